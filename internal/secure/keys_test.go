package secure

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/cristalhq/jwt/v5"
)

func TestPublicKeyFile(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	ecPriv, err := x509.MarshalECPrivateKey(k.ec256)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr string // "" means it loads
	}{
		{"PKIX RSA", pemOf(t, &k.rsa.PublicKey), ""},
		{"PKCS1 RSA", block("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)), ""},
		{"certificate", block("CERTIFICATE", selfSigned(t, k.ec256)), ""},
		{"several keys", pemOf(t, &k.rsa.PublicKey, &k.ec384.PublicKey, k.ed.Public()), ""},
		{"weak RSA", pemOf(t, &weak.PublicKey), "fewer than 2048"},
		{"P-224", pemOf(t, &p224.PublicKey), "unsupported"},
		{"private key", block("EC PRIVATE KEY", ecPriv), "private key"},
		{"no PEM", []byte("not a key"), "no PEM public key"},
		{"garbage block", block("PUBLIC KEY", []byte("junk")), "PEM block 1"},
		{"unknown block", block("OPENSSH PUBLIC KEY", []byte("junk")), "unsupported PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "key.pem", tt.data)
			v, err := NewVerifier(VerifierOptions{PublicKeyFile: path})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				v.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("NewVerifier = %v, want an error naming %s and containing %q", err, path, tt.wantErr)
			}
		})
	}
}

func selfSigned(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "edgeway test"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCertificateKeyVerifies(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	path := writeFile(t, "cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: selfSigned(t, k.ec256)}))
	v := newTestVerifier(t, VerifierOptions{PublicKeyFile: path})
	if _, err := v.Verify(sign(t, signerES(t, jwt.ES256, k.ec256), "", claims(nil)), testNow); err != nil {
		t.Fatal(err)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    VerifierOptions
		want string
	}{
		{"no keys", VerifierOptions{}, "needs a secret"},
		{"missing file", VerifierOptions{PublicKeyFile: "/nonexistent/jwt.pem"}, "read public key /nonexistent/jwt.pem"},
		{"PEM as secret", VerifierOptions{Secret: []byte("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n")}, "PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewVerifier = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestErrorTexts(t *testing.T) {
	t.Parallel()
	for _, err := range []error{ErrMissing, ErrMalformed, ErrExpired, ErrNotYetValid, ErrBadSignature,
		ErrWrongIssuer, ErrWrongAudience, ErrUnknownKey, ErrAlgorithm} {
		if msg := err.Error(); msg == "" || len(msg) > 40 || errors.Unwrap(err) != nil {
			t.Errorf("%q: want a short, unwrapped client text", msg)
		}
	}
}
