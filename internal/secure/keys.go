package secure

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/cristalhq/jwt/v5"
)

// MinRSABits is the smallest RSA modulus accepted from a PEM file or a JWKS
// (RFC 7518 §3.3 requires 2048).
const MinRSABits = 2048

// key is one configured verification key and the only algorithms it may
// verify, each with its ready-made verifier. It is immutable once built.
type key struct {
	kid       string // "" for the shared secret and PEM keys
	verifiers map[jwt.Algorithm]jwt.Verifier
}

// verifier returns the verifier for alg, or nil when this key may not
// verify alg.
func (k *key) verifier(alg jwt.Algorithm) jwt.Verifier {
	return k.verifiers[alg]
}

var hmacAlgorithms = []jwt.Algorithm{jwt.HS256, jwt.HS384, jwt.HS512}

// newSecretKey builds the HS256/384/512 key. Bytes that look like a PEM
// block are refused: an HMAC verifier keyed with a public key is exactly the
// alg-confusion hole (RFC 8725 §2.1).
func newSecretKey(secret []byte) (*key, error) {
	if bytes.Contains(secret, []byte("-----BEGIN")) {
		return nil, errors.New("the JWT secret is a PEM block; give public keys as a public key file")
	}
	secret = bytes.Clone(secret)
	k := &key{verifiers: make(map[jwt.Algorithm]jwt.Verifier, len(hmacAlgorithms))}
	for _, alg := range hmacAlgorithms {
		v, err := jwt.NewVerifierHS(alg, secret)
		if err != nil {
			return nil, fmt.Errorf("build %s verifier: %w", alg, err)
		}
		k.verifiers[alg] = v
	}
	return k, nil
}

// newPublicKey builds a key for pub. When only is non-empty (a JWK "alg"),
// the key verifies that algorithm alone, which must suit the key type.
func newPublicKey(pub crypto.PublicKey, kid string, only jwt.Algorithm) (*key, error) {
	algs, err := algorithmsFor(pub)
	if err != nil {
		return nil, err
	}
	if only != "" {
		if !containsAlg(algs, only) {
			return nil, fmt.Errorf("algorithm %s does not suit a %s", only, keyTypeName(pub))
		}
		algs = []jwt.Algorithm{only}
	}
	k := &key{kid: kid, verifiers: make(map[jwt.Algorithm]jwt.Verifier, len(algs))}
	for _, alg := range algs {
		v, err := newAsymmetricVerifier(alg, pub)
		if err != nil {
			return nil, fmt.Errorf("build %s verifier: %w", alg, err)
		}
		k.verifiers[alg] = v
	}
	return k, nil
}

// algorithmsFor derives the allowed algorithms from the key type: RSA keys
// allow RS* and PS*, an EC key only the ES algorithm of its curve, Ed25519
// keys EdDSA.
func algorithmsFor(pub crypto.PublicKey) ([]jwt.Algorithm, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); bits < MinRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, fewer than %d", bits, MinRSABits)
		}
		return []jwt.Algorithm{jwt.RS256, jwt.RS384, jwt.RS512, jwt.PS256, jwt.PS384, jwt.PS512}, nil
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			return []jwt.Algorithm{jwt.ES256}, nil
		case elliptic.P384():
			return []jwt.Algorithm{jwt.ES384}, nil
		case elliptic.P521():
			return []jwt.Algorithm{jwt.ES512}, nil
		}
		return nil, fmt.Errorf("unsupported EC curve %s", pub.Curve.Params().Name)
	case ed25519.PublicKey:
		return []jwt.Algorithm{jwt.EdDSA}, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", pub)
}

func newAsymmetricVerifier(alg jwt.Algorithm, pub crypto.PublicKey) (jwt.Verifier, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if alg[0] == 'P' {
			return jwt.NewVerifierPS(alg, pub)
		}
		return jwt.NewVerifierRS(alg, pub)
	case *ecdsa.PublicKey:
		return jwt.NewVerifierES(alg, pub)
	case ed25519.PublicKey:
		return jwt.NewVerifierEdDSA(pub)
	}
	return nil, fmt.Errorf("unsupported key type %T", pub)
}

func containsAlg(algs []jwt.Algorithm, alg jwt.Algorithm) bool {
	for _, a := range algs {
		if a == alg {
			return true
		}
	}
	return false
}

func keyTypeName(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "RSA key"
	case *ecdsa.PublicKey:
		return "EC key"
	case ed25519.PublicKey:
		return "Ed25519 key"
	}
	return fmt.Sprintf("%T", pub)
}

// loadPublicKeyFile reads every public key in a PEM file: "PUBLIC KEY"
// (PKIX), "RSA PUBLIC KEY" (PKCS #1) and "CERTIFICATE" blocks. Private keys
// are refused so they are not left lying next to the gateway.
func loadPublicKeyFile(path string) ([]*key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read public key %s: %w", path, err)
	}
	var keys []*key
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		pub, err := parsePEMBlock(block)
		if err != nil {
			return nil, fmt.Errorf("public key %s: PEM block %d: %w", path, n, err)
		}
		k, err := newPublicKey(pub, "", "")
		if err != nil {
			return nil, fmt.Errorf("public key %s: PEM block %d: %w", path, n, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("public key %s: no PEM public key found", path)
	}
	return keys, nil
}

func parsePEMBlock(b *pem.Block) (crypto.PublicKey, error) {
	switch b.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%q is a private key; give the public key only", b.Type)
	}
	return nil, fmt.Errorf("unsupported PEM block type %q", b.Type)
}
