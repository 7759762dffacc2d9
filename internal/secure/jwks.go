package secure

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cristalhq/jwt/v5"
)

// MaxJWKSSize bounds a JWKS response body, in bytes.
const MaxJWKSSize = 1 << 20

// jwksSource fetches one JWKS URL. Its mutex serialises refreshes, so
// concurrent requests with the same new kid wait for one fetch instead of
// each starting their own.
type jwksSource struct {
	url    string
	client *http.Client
	minGap time.Duration    // floor between two fetch attempts
	now    func() time.Time // clock for the floor

	mu   sync.Mutex
	last time.Time // last attempt, successful or not
	body []byte    // last good response body
}

// fetchKeys fetches and parses the key set. changed is false (and keys nil)
// when the body is the same as the last good one. skipped lists keys that
// were left out, for the log.
func (s *jwksSource) fetchKeys(ctx context.Context) (keys []*key, changed bool, skipped []error, err error) {
	s.last = s.now()
	body, err := s.get(ctx)
	if err != nil {
		return nil, false, nil, err
	}
	if s.body != nil && bytes.Equal(body, s.body) {
		return nil, false, nil, nil
	}
	keys, skipped, err = parseJWKS(body)
	if err != nil {
		return nil, false, skipped, fmt.Errorf("JWKS %s: %w", s.url, err)
	}
	s.body = body
	return keys, true, skipped, nil
}

func (s *jwksSource) get(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS %s: %w", s.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it would repeat the URL
		}
		return nil, fmt.Errorf("fetch JWKS %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS %s: status %d", s.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS %s: read body: %w", s.url, err)
	}
	if len(body) > MaxJWKSSize {
		return nil, fmt.Errorf("fetch JWKS %s: body larger than %d bytes", s.url, MaxJWKSSize)
	}
	return body, nil
}

// jwk holds the members of RFC 7517 §4 and RFC 7518 §6 that edgeway reads.
// Private members ("d" and friends) are never read.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	Alg    string   `json:"alg"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// parseJWKS turns a JWKS document into keys. A key that is unusable (wrong
// use, unknown type, weak) is skipped and reported in skipped; a document
// that is not JSON or leaves no usable key is an error.
func parseJWKS(body []byte) (keys []*key, skipped []error, err error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("decode: %w", err)
	}
	for i, j := range doc.Keys {
		k, err := j.key()
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d (kid %q): %w", i, j.Kid, err))
			continue
		}
		if k != nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("no usable signing key among %d", len(doc.Keys))
	}
	return keys, skipped, nil
}

// key converts a JWK. It returns nil, nil for a key that is not meant for
// verifying signatures.
func (j *jwk) key() (*key, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, nil
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return nil, nil
	}
	pub, err := j.publicKey()
	if err != nil {
		return nil, err
	}
	return newPublicKey(pub, j.Kid, jwt.Algorithm(j.Alg))
}

func (j *jwk) publicKey() (crypto.PublicKey, error) {
	switch j.Kty {
	case "RSA":
		return j.rsaKey()
	case "EC":
		return j.ecKey()
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported OKP curve %q", j.Crv)
		}
		x, err := decodeB64Field("x", j.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("Ed25519 x is %d bytes, want %d", len(x), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("unsupported key type %q", j.Kty)
}

func (j *jwk) rsaKey() (*rsa.PublicKey, error) {
	n, err := decodeB64Field("n", j.N)
	if err != nil {
		return nil, err
	}
	e, err := decodeB64Field("e", j.E)
	if err != nil {
		return nil, err
	}
	if len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("RSA exponent is %d bytes", len(e))
	}
	exp := 0
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp > 1<<31-1 || exp%2 == 0 {
		return nil, fmt.Errorf("RSA exponent %d is invalid", exp)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
}

func (j *jwk) ecKey() (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch j.Crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	case "P-521":
		curve = elliptic.P521()
	default:
		return nil, fmt.Errorf("unsupported EC curve %q", j.Crv)
	}
	x, err := decodeB64Field("x", j.X)
	if err != nil {
		return nil, err
	}
	y, err := decodeB64Field("y", j.Y)
	if err != nil {
		return nil, err
	}
	size := (curve.Params().BitSize + 7) / 8
	if len(x) != size || len(y) != size {
		return nil, fmt.Errorf("%s coordinates are %d and %d bytes, want %d", j.Crv, len(x), len(y), size)
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("%s point: %w", j.Crv, err)
	}
	return pub, nil
}

// decodeB64Field decodes a base64url member, tolerating padding some
// issuers add.
func decodeB64Field(name, s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("missing %q", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("decode %q: %w", name, err)
	}
	return b, nil
}
