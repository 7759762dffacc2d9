package secure

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cristalhq/jwt/v5"
)

// testNow is the time every test verifies at.
var testNow = time.Unix(1_800_000_000, 0)

const testSecret = "test-secret-0123456789-0123456789-abcdef"

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	rsa, rsa2                   *rsa.PrivateKey
	ec256, ec256b, ec384, ec521 *ecdsa.PrivateKey
	ed                          ed25519.PrivateKey
}

var keysOnce = sync.OnceValue(func() *testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &testKeys{}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	for _, p := range []struct {
		dst   **ecdsa.PrivateKey
		curve elliptic.Curve
	}{{&k.ec256, elliptic.P256()}, {&k.ec256b, elliptic.P256()}, {&k.ec384, elliptic.P384()}, {&k.ec521, elliptic.P521()}} {
		*p.dst, err = ecdsa.GenerateKey(p.curve, rand.Reader)
		must(err)
	}
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

// pemOf encodes public keys as PKIX "PUBLIC KEY" blocks.
func pemOf(t testing.TB, pubs ...crypto.PublicKey) []byte {
	t.Helper()
	var out []byte
	for _, pub := range pubs {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	return out
}

// writeFile writes data to a fresh file and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func signerHS(t testing.TB, alg jwt.Algorithm, secret []byte) jwt.Signer {
	t.Helper()
	s, err := jwt.NewSignerHS(alg, secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signerRS(t testing.TB, alg jwt.Algorithm, k *rsa.PrivateKey) jwt.Signer {
	t.Helper()
	var s jwt.Signer
	var err error
	if strings.HasPrefix(string(alg), "PS") {
		s, err = jwt.NewSignerPS(alg, k)
	} else {
		s, err = jwt.NewSignerRS(alg, k)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signerES(t testing.TB, alg jwt.Algorithm, k *ecdsa.PrivateKey) jwt.Signer {
	t.Helper()
	s, err := jwt.NewSignerES(alg, k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signerEd(t testing.TB, k ed25519.PrivateKey) jwt.Signer {
	t.Helper()
	s, err := jwt.NewSignerEdDSA(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sign builds a token. claims may be a map, a struct or raw JSON bytes.
func sign(t testing.TB, s jwt.Signer, kid string, claims any) []byte {
	t.Helper()
	var opts []jwt.BuilderOption
	if kid != "" {
		opts = append(opts, jwt.WithKeyID(kid))
	}
	tok, err := jwt.NewBuilder(s, opts...).Build(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Bytes()
}

// claims returns standard claims valid at testNow, with extra merged in (a
// nil value deletes a claim).
func claims(extra map[string]any) map[string]any {
	c := map[string]any{
		"sub":  "user-1",
		"role": "authenticated",
		"iat":  testNow.Add(-time.Minute).Unix(),
		"exp":  testNow.Add(time.Hour).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// unsigned builds "header.claims." from raw JSON, for alg none and
// hand-made malformed tokens.
func unsigned(header, claims string) []byte {
	enc := base64.RawURLEncoding
	return []byte(enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims)) + ".")
}

// segments splits a token into its three parts.
func segments(tok []byte) (h, c, s string) {
	parts := strings.SplitN(string(tok), ".", 3)
	return parts[0], parts[1], parts[2]
}

func newTestVerifier(t testing.TB, o VerifierOptions) *Verifier {
	t.Helper()
	v, err := NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// fakeClock drives the JWKS refresh floor.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: testNow} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
