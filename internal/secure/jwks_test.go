package secure

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cristalhq/jwt/v5"
	"github.com/rs/zerolog"
)

// jwksServer serves a JWKS document on loopback and counts requests.
type jwksServer struct {
	*httptest.Server
	requests atomic.Int64
	hits     chan int // the version served, per request; dropped when full

	mu      sync.Mutex
	body    []byte
	status  int
	version int // bumped by every set
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{hits: make(chan int, 64), status: http.StatusOK}
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		body, status, version := s.body, s.status, s.version
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
		select {
		case s.hits <- version:
		default:
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t *testing.T, keys ...map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	s.set(http.StatusOK, body)
}

func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.version++
	s.mu.Unlock()
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwkRSA(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig",
		"n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes())}
}

func jwkEC(t *testing.T, kid string, pub *ecdsa.PublicKey) map[string]any {
	t.Helper()
	point, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	size := (len(point) - 1) / 2
	return map[string]any{"kty": "EC", "kid": kid, "crv": pub.Params().Name,
		"x": b64u(point[1 : 1+size]), "y": b64u(point[1+size:])}
}

func jwkEd(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64u(pub)}
}

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// jwksVerifier is a Verifier on srv with a fake clock for the refresh
// floor and a background period long enough never to fire.
func jwksVerifier(t *testing.T, srv *jwksServer, clk *fakeClock, logs *logBuffer) *Verifier {
	t.Helper()
	o := VerifierOptions{
		JWKSURL:        srv.URL + "/auth/v1/.well-known/jwks.json",
		JWKSRefresh:    time.Hour,
		JWKSMinRefresh: 30 * time.Second,
		HTTPClient:     srv.Client(),
		now:            clk.Now,
	}
	if logs != nil {
		o.Log = zerolog.New(logs)
	}
	return newTestVerifier(t, o)
}

func TestJWKSVerify(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	srv := newJWKSServer(t, jwkRSA("rsa-1", &k.rsa.PublicKey), jwkEC(t, "ec-1", &k.ec256.PublicKey),
		jwkEC(t, "ec-384", &k.ec384.PublicKey), jwkEd("ed-1", k.ed.Public().(ed25519.PublicKey)))
	v := jwksVerifier(t, srv, newFakeClock(), nil)
	tests := []struct {
		name  string
		token []byte
		want  error
	}{
		{"RS256 by kid", sign(t, signerRS(t, jwt.RS256, k.rsa), "rsa-1", claims(nil)), nil},
		{"PS256 by kid", sign(t, signerRS(t, jwt.PS256, k.rsa), "rsa-1", claims(nil)), nil},
		{"ES256 by kid", sign(t, signerES(t, jwt.ES256, k.ec256), "ec-1", claims(nil)), nil},
		{"ES384 by kid", sign(t, signerES(t, jwt.ES384, k.ec384), "ec-384", claims(nil)), nil},
		{"EdDSA by kid", sign(t, signerEd(t, k.ed), "ed-1", claims(nil)), nil},
		{"ES256 without kid", sign(t, signerES(t, jwt.ES256, k.ec256), "", claims(nil)), nil},
		{"kid of another key", sign(t, signerES(t, jwt.ES256, k.ec256), "rsa-1", claims(nil)), ErrAlgorithm},
		{"right kid, other key", sign(t, signerRS(t, jwt.RS256, k.rsa2), "rsa-1", claims(nil)), ErrBadSignature},
		{"unknown kid", sign(t, signerRS(t, jwt.RS256, k.rsa), "nope", claims(nil)), ErrUnknownKey},
		{"HS256 without a secret", sign(t, signerHS(t, jwt.HS256, []byte(testSecret)), "rsa-1", claims(nil)), ErrAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Verify(tt.token, testNow); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestJWKSRotationViaUnknownKid(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	srv := newJWKSServer(t, jwkRSA("old", &k.rsa.PublicKey))
	clk := newFakeClock()
	v := jwksVerifier(t, srv, clk, nil)
	oldTok := sign(t, signerRS(t, jwt.RS256, k.rsa), "old", claims(nil))
	if _, err := v.Verify(oldTok, testNow); err != nil {
		t.Fatal(err)
	}

	srv.setKeys(t, jwkEC(t, "new", &k.ec256.PublicKey))
	clk.Advance(time.Minute) // past the floor
	newTok := sign(t, signerES(t, jwt.ES256, k.ec256), "new", claims(nil))
	if _, err := v.Verify(newTok, testNow); err != nil {
		t.Fatalf("Verify with the rotated kid: %v", err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
	// The old key left the set, and the cache was purged with it.
	if _, err := v.Verify(oldTok, testNow); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify with the withdrawn kid = %v, want %v", err, ErrUnknownKey)
	}
}

func TestJWKSRefreshFloor(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	srv := newJWKSServer(t, jwkRSA("k1", &k.rsa.PublicKey))
	clk := newFakeClock()
	v := jwksVerifier(t, srv, clk, nil)
	rs := signerRS(t, jwt.RS256, k.rsa)
	unknown := func(i int) []byte { return sign(t, rs, "random-"+string(rune('a'+i)), claims(nil)) }

	steps := []struct {
		name    string
		advance time.Duration
		tokens  int
		want    int64 // requests after the step
	}{
		{"burst right after start", 0, 10, 1},
		{"still inside the floor", 29 * time.Second, 10, 1},
		{"floor passed: one fetch for the burst", 2 * time.Second, 10, 2},
		{"inside the new floor", 10 * time.Second, 10, 2},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		for i := 0; i < st.tokens; i++ {
			if _, err := v.Verify(unknown(i), testNow); !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("%s: Verify = %v, want %v", st.name, err, ErrUnknownKey)
			}
		}
		if n := srv.requests.Load(); n != st.want {
			t.Fatalf("%s: %d JWKS requests, want %d", st.name, n, st.want)
		}
	}
}

func TestJWKSKeepsLastGoodSet(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	srv := newJWKSServer(t, jwkRSA("k1", &k.rsa.PublicKey))
	clk := newFakeClock()
	logs := &logBuffer{}
	v := jwksVerifier(t, srv, clk, logs)
	good := sign(t, signerRS(t, jwt.RS256, k.rsa), "k1", claims(nil))

	failures := []struct {
		name   string
		status int
		body   string
	}{
		{"server error", http.StatusInternalServerError, "oops"},
		{"not json", http.StatusOK, "<html>"},
		{"no usable key", http.StatusOK, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`},
		{"empty set", http.StatusOK, `{"keys":[]}`},
	}
	for _, f := range failures {
		srv.set(f.status, []byte(f.body))
		clk.Advance(time.Minute)
		before := srv.requests.Load()
		unknown := sign(t, signerRS(t, jwt.RS256, k.rsa), "k2", claims(nil))
		if _, err := v.Verify(unknown, testNow); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("%s: Verify(unknown kid) = %v, want %v", f.name, err, ErrUnknownKey)
		}
		if srv.requests.Load() != before+1 {
			t.Fatalf("%s: the unknown kid did not trigger a fetch", f.name)
		}
		v.cache.purge() // verify with the keys, not from the cache
		if _, err := v.Verify(good, testNow); err != nil {
			t.Fatalf("%s: the last good key stopped verifying: %v", f.name, err)
		}
	}
	if n := strings.Count(logs.String(), "keeping the last good key set"); n != len(failures) {
		t.Errorf("logged %d refresh failures, want %d:\n%s", n, len(failures), logs)
	}
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	srv := newJWKSServer(t, jwkRSA("k1", &k.rsa.PublicKey))
	v := newTestVerifier(t, VerifierOptions{
		JWKSURL:        srv.URL,
		JWKSRefresh:    time.Millisecond,
		JWKSMinRefresh: time.Nanosecond,
		HTTPClient:     srv.Client(),
	})
	srv.setKeys(t, jwkRSA("k2", &k.rsa2.PublicKey))
	const rotated = 2 // the version setKeys made
	// The loop fetches one key set at a time, so once a request after the
	// first one served k2 has arrived, the set with k2 has been published.
	for ver := range srv.hits {
		if ver == rotated {
			break
		}
	}
	<-srv.hits
	if _, ok := v.keys.Load().byKID["k2"]; !ok {
		t.Fatal("the background refresh did not pick up k2")
	}
	v.Close()
	v.Close() // idempotent; the loop has returned
	if _, err := v.Verify(sign(t, signerRS(t, jwt.RS256, k.rsa2), "k2", claims(nil)), testNow); err != nil {
		t.Fatalf("Verify after Close: %v", err)
	}
}

func TestJWKSHSTokenWithKidNeedsNoFetch(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	srv := newJWKSServer(t, jwkRSA("k1", &k.rsa.PublicKey))
	clk := newFakeClock()
	o := VerifierOptions{Secret: []byte(testSecret), JWKSURL: srv.URL, HTTPClient: srv.Client(), now: clk.Now}
	v := newTestVerifier(t, o)
	clk.Advance(time.Hour)
	// Supabase's legacy HS256 tokens may carry the kid of the legacy secret,
	// which a JWKS never lists.
	tok := sign(t, signerHS(t, jwt.HS256, []byte(testSecret)), "legacy-hs", claims(nil))
	if _, err := v.Verify(tok, testNow); err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d JWKS requests, want 1", n)
	}
}

func TestJWKSStartErrors(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/jwks.json"
	dead.Close()
	bad := newJWKSServer(t)
	bad.set(http.StatusServiceUnavailable, nil)
	tests := []struct {
		name, url, want string
	}{
		{"unreachable", deadURL, deadURL},
		{"status", bad.URL, bad.URL + ": status 503"},
		{"not a URL", "jwks.json", `"jwks.json"`},
		{"ftp", "ftp://example.com/jwks", "want an http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(VerifierOptions{JWKSURL: tt.url, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewVerifier = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for key, v := range m {
			out[key] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	rsaJWK := jwkRSA("r", &k.rsa.PublicKey)
	ecJWK := jwkEC(t, "e", &k.ec256.PublicKey)
	tests := []struct {
		name     string
		key      map[string]any
		wantAlgs []jwt.Algorithm // nil: skipped
	}{
		{"RSA", rsaJWK, []jwt.Algorithm{jwt.RS256, jwt.RS384, jwt.RS512, jwt.PS256, jwt.PS384, jwt.PS512}},
		{"RSA alg RS256 only", with(rsaJWK, "alg", "RS256"), []jwt.Algorithm{jwt.RS256}},
		{"RSA alg ES256", with(rsaJWK, "alg", "ES256"), nil},
		{"RSA alg HS256", with(rsaJWK, "alg", "HS256"), nil},
		{"RSA padded members", with(rsaJWK, "e", "AQAB=="), []jwt.Algorithm{jwt.RS256, jwt.RS384, jwt.RS512, jwt.PS256, jwt.PS384, jwt.PS512}},
		{"RSA 1024 bits", jwkRSA("w", &weak.PublicKey), nil},
		{"RSA even exponent", with(rsaJWK, "e", "Ag"), nil},
		{"RSA no n", with(rsaJWK, "n", ""), nil},
		{"EC P-256", ecJWK, []jwt.Algorithm{jwt.ES256}},
		{"EC P-384", jwkEC(t, "e3", &k.ec384.PublicKey), []jwt.Algorithm{jwt.ES384}},
		{"EC P-521", jwkEC(t, "e5", &k.ec521.PublicKey), []jwt.Algorithm{jwt.ES512}},
		{"EC curve mismatch", with(ecJWK, "crv", "P-384"), nil},
		{"EC point off the curve", with(ecJWK, "y", ecJWK["x"]), nil},
		{"EC secp256k1", with(ecJWK, "crv", "secp256k1"), nil},
		{"EC bad base64", with(ecJWK, "x", "!!!"), nil},
		{"Ed25519", jwkEd("d", k.ed.Public().(ed25519.PublicKey)), []jwt.Algorithm{jwt.EdDSA}},
		{"Ed448", with(jwkEd("d", k.ed.Public().(ed25519.PublicKey)), "crv", "Ed448"), nil},
		{"Ed25519 short", with(jwkEd("d", k.ed.Public().(ed25519.PublicKey)), "x", "AAAA"), nil},
		{"oct", map[string]any{"kty": "oct", "k": "c2VjcmV0"}, nil},
		{"use enc", with(rsaJWK, "use", "enc"), nil},
		{"key_ops verify", with(rsaJWK, "key_ops", []string{"verify"}, "alg", "RS256"), []jwt.Algorithm{jwt.RS256}},
		{"key_ops encrypt", with(rsaJWK, "key_ops", []string{"encrypt"}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := json.Marshal(map[string]any{"keys": []any{tt.key, jwkEd("anchor", k.ed.Public().(ed25519.PublicKey))}})
			if err != nil {
				t.Fatal(err)
			}
			keys, _, err := parseJWKS(body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantAlgs == nil {
				if len(keys) != 1 {
					t.Fatalf("got %d keys, want the anchor only", len(keys))
				}
				return
			}
			if len(keys) != 2 {
				t.Fatalf("got %d keys, want 2", len(keys))
			}
			got := keys[0]
			if len(got.verifiers) != len(tt.wantAlgs) {
				t.Errorf("algorithms %v, want %v", algNames(got), tt.wantAlgs)
			}
			for _, alg := range tt.wantAlgs {
				if got.verifier(alg) == nil {
					t.Errorf("algorithm %s missing; have %v", alg, algNames(got))
				}
			}
		})
	}
}

func algNames(k *key) []jwt.Algorithm {
	var out []jwt.Algorithm
	for alg := range k.verifiers {
		out = append(out, alg)
	}
	return out
}

func TestJWKSSkippedKeysAreLogged(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	srv := newJWKSServer(t, map[string]any{"kty": "oct", "kid": "sym", "k": "c2VjcmV0"}, jwkRSA("k1", &k.rsa.PublicKey))
	logs := &logBuffer{}
	jwksVerifier(t, srv, newFakeClock(), logs)
	if !strings.Contains(logs.String(), "JWKS key skipped") || !strings.Contains(logs.String(), `kid \"sym\"`) {
		t.Errorf("log does not mention the skipped key:\n%s", logs)
	}
}

// panickyTransport panics on the requests it is told to, as a bug in the
// fetch would, and passes the others on.
type panickyTransport struct {
	next   http.RoundTripper
	panics atomic.Int32 // requests left to panic on
}

func (p *panickyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if p.panics.Add(-1) >= 0 {
		panic("transport bug")
	}
	return p.next.RoundTrip(r)
}

// A panic in the background refresh is counted and the loop goes on: a
// key rotated afterwards is still picked up.
func TestJWKSRefreshSurvivesAPanic(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, jwkRSA("k1", &k.rsa.PublicKey))
	tr := &panickyTransport{next: srv.Client().Transport}
	panics := metrics.GetOrCreateCounter(`edgeway_panics_total{where="jwks"}`)
	before := panics.Get()
	v := newTestVerifier(t, VerifierOptions{
		JWKSURL:        srv.URL,
		JWKSRefresh:    time.Millisecond,
		JWKSMinRefresh: time.Nanosecond,
		HTTPClient:     &http.Client{Transport: tr},
	})
	tr.panics.Store(3) // after the first fetch, which Start needs
	srv.setKeys(t, jwkRSA("k2", &k.rsa2.PublicKey))
	const rotated = 2
	for ver := range srv.hits {
		if ver == rotated {
			break
		}
	}
	<-srv.hits
	if _, ok := v.keys.Load().byKID["k2"]; !ok {
		t.Fatal("the refresh loop did not pick up k2 after its panics")
	}
	if got := panics.Get(); got != before+3 {
		t.Fatalf("jwks panics %d → %d, want 3 more", before, got)
	}
}
