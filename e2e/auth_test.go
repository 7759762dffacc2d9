package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"edgeway.dev/edgeway/internal/secure"

	"github.com/cristalhq/jwt/v5"
)

// hitFn logs "hit <path>" for every request that reaches it, so a test can
// count what got through the gateway, and reports what it saw.
const hitFn = `Deno.serve((req) => {
  const u = new URL(req.url);
  console.log("hit " + u.pathname);
  return Response.json({ method: req.method, path: u.pathname, search: u.search, headers: Object.fromEntries(req.headers) });
});
`

// envFn returns Deno.env.get(k) for every ?k= (null when unset).
const envFn = `Deno.serve((req) => {
  const out: Record<string, string | null> = {};
  for (const k of new URL(req.url).searchParams.getAll("k")) out[k] = Deno.env.get(k) ?? null;
  return Response.json(out);
});
`

// hitCount counts the requests fn logged, sync markers excluded.
func hitCount(g *Gateway, fn string) int {
	return g.logs.count(func(l logLine) bool {
		return l.Str("function") == fn && strings.HasPrefix(l.Msg(), "hit ") && !strings.HasPrefix(l.Msg(), "hit /__sync")
	})
}

var syncSeq atomic.Int64

// syncHits sends fn (a hitFn with one worker) a request that passes every
// guard (header carries its credentials), waits for fn to log it and
// returns hitCount. The worker logs in order, so the lines of every earlier
// request that reached it are in by then: a count that has not grown proves
// nothing else got through.
func syncHits(t *testing.T, g *Gateway, fn string, header map[string]string) int {
	t.Helper()
	path := fmt.Sprintf("/__sync%d", syncSeq.Add(1))
	if r := g.Do("GET", "/"+fn+path, nil, header); r.Status != 200 {
		t.Fatalf("sync request to %s: %d %q", fn, r.Status, r.Body)
	}
	g.WaitLog(func(l logLine) bool { return l.Str("function") == fn && l.Msg() == "hit "+path })
	return hitCount(g, fn)
}

// randomSecret is a production-grade HS256 secret: 64 hex characters.
func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func hsSigner(t *testing.T, alg jwt.Algorithm, key []byte) jwt.Signer {
	t.Helper()
	s, err := jwt.NewSignerHS(alg, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mint signs claims.
func mint(t *testing.T, signer jwt.Signer, claims any, opts ...jwt.BuilderOption) string {
	t.Helper()
	tok, err := jwt.NewBuilder(signer, opts...).Build(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok.String()
}

// userClaims are a Supabase user's claims, valid for an hour.
func userClaims(sub string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{"sub": sub, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 3600}
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// seen returns the headers the function reported.
func seen(t *testing.T, r Response) map[string]any {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d %q", r.Status, r.Body)
	}
	return r.JSON(t)["headers"].(map[string]any)
}

// claimsSeen decodes the x-auth-claims header the function received.
func claimsSeen(t *testing.T, r Response) map[string]any {
	t.Helper()
	v, ok := seen(t, r)["x-auth-claims"].(string)
	if !ok {
		t.Fatalf("the function got no x-auth-claims: %q", r.Body)
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		t.Fatalf("x-auth-claims %q is not base64url: %v", v, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("x-auth-claims is not JSON: %v: %s", err, raw)
	}
	return m
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publicPEM returns the PKIX PEM of pub.
func publicPEM(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestJWTValidTokenReachesFunctionWithClaims(t *testing.T) {
	secret := randomSecret(t)
	g := startGateway(t, map[string]string{"private/index.ts": hitFn}, "--auth", "jwt", "--jwt-secret", secret)
	claims := userClaims("user-1")
	claims["email"] = "ada@example.com"
	claims["app_metadata"] = map[string]any{"provider": "email"}
	token := mint(t, hsSigner(t, jwt.HS256, []byte(secret)), claims)

	for _, path := range []string{"/private", "/functions/v1/private"} {
		r := g.Do("GET", path, nil, bearer(token))
		if got := seen(t, r)["authorization"]; got != "Bearer "+token {
			t.Errorf("%s: the function saw authorization %q, want the original header", path, got)
		}
		c := claimsSeen(t, r)
		if c["sub"] != "user-1" || c["role"] != "authenticated" || c["email"] != "ada@example.com" || c["exp"] != float64(claims["exp"].(int64)) {
			t.Errorf("%s: claims %v", path, c)
		}
		if md, _ := c["app_metadata"].(map[string]any); md["provider"] != "email" {
			t.Errorf("%s: nested claims %v", path, c["app_metadata"])
		}
	}

	// exp 10s ago is within the default 30s clock skew; HS512 with the same
	// secret is accepted too.
	stale := userClaims("user-2")
	stale["exp"] = time.Now().Unix() - 10
	if c := claimsSeen(t, g.Do("GET", "/private", nil, bearer(mint(t, hsSigner(t, jwt.HS256, []byte(secret)), stale)))); c["sub"] != "user-2" {
		t.Errorf("token expired within the clock skew: claims %v", c)
	}
	if c := claimsSeen(t, g.Do("GET", "/private", nil, bearer(mint(t, hsSigner(t, jwt.HS512, []byte(secret)), userClaims("user-3"))))); c["sub"] != "user-3" {
		t.Errorf("HS512: claims %v", c)
	}
}

func TestJWTRefusedTokensNeverReachFunction(t *testing.T) {
	secret := randomSecret(t)
	rk := rsaKey(t)
	pemBytes := publicPEM(t, &rk.PublicKey)
	pemFile := filepath.Join(t.TempDir(), "jwt.pub.pem")
	if err := os.WriteFile(pemFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	hs := hsSigner(t, jwt.HS256, []byte(secret))
	rs, err := jwt.NewSignerRS(jwt.RS256, rk)
	if err != nil {
		t.Fatal(err)
	}
	good := mint(t, hs, userClaims("user-1"))
	now := time.Now().Unix()

	with := func(edit func(map[string]any)) map[string]any {
		c := userClaims("user-1")
		edit(c)
		return c
	}
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + b64(`{"sub":"user-1","role":"service_role","aud":"authenticated","exp":`+fmt.Sprint(now+3600)+`}`) + "." + parts[2]
	algNone := b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "."
	unconfiguredEC, err := jwt.NewSignerES(jwt.ES256, ecKey(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		header map[string]string
		reason error // the message of the 401
	}{
		{"missing", nil, secure.ErrMissing},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, secure.ErrMissing},
		{"other scheme", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, secure.ErrMissing},
		{"not a JWT", bearer("not-a-jwt"), secure.ErrMalformed},
		{"expired beyond the clock skew", bearer(mint(t, hs, with(func(c map[string]any) { c["exp"] = now - 120 }))), secure.ErrExpired},
		{"not yet valid", bearer(mint(t, hs, with(func(c map[string]any) { c["nbf"] = now + 120 }))), secure.ErrNotYetValid},
		{"tampered payload", bearer(tampered), secure.ErrBadSignature},
		{"alg none", bearer(algNone), secure.ErrAlgorithm},
		{"HS256 keyed with the RSA public key PEM", bearer(mint(t, hsSigner(t, jwt.HS256, pemBytes), userClaims("user-1"))), secure.ErrBadSignature},
		{"wrong audience", bearer(mint(t, hs, with(func(c map[string]any) { c["aud"] = "someone-else" }))), secure.ErrWrongAudience},
		{"no audience", bearer(mint(t, hs, with(func(c map[string]any) { delete(c, "aud") }))), secure.ErrWrongAudience},
		{"wrong secret", bearer(mint(t, hsSigner(t, jwt.HS256, []byte(randomSecret(t))), userClaims("user-1"))), secure.ErrBadSignature},
		{"ES256 from an unconfigured key", bearer(mint(t, unconfiguredEC, userClaims("user-1"))), secure.ErrAlgorithm},
	}

	g := startGateway(t, map[string]string{"private/index.ts": hitFn},
		"--auth", "jwt", "--jwt-secret", secret, "--jwt-public-key", pemFile, "--jwt-audience", "authenticated", "--jwt-clock-skew", "30s")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := g.Do("GET", "/private", nil, c.header)
			expectError(t, r, 401, "UNAUTHORIZED")
			if msg := r.JSON(t)["message"]; msg != c.reason.Error() {
				t.Errorf("refused as %q, want %q", msg, c.reason)
			}
		})
	}
	// The RSA key from the PEM file verifies RS256; then nothing else got in.
	if c := claimsSeen(t, g.Do("GET", "/private", nil, bearer(mint(t, rs, userClaims("rsa-user"))))); c["sub"] != "rsa-user" {
		t.Fatalf("RS256 via --jwt-public-key: claims %v", c)
	}
	if n := syncHits(t, g, "private", bearer(good)); n != 1 {
		t.Fatalf("%d requests reached the function, want only the RS256 one", n)
	}

	// The classic confusion: only a public key configured, and a token
	// HMAC-signed with that key's PEM bytes.
	t.Run("public key only", func(t *testing.T) {
		g := startGateway(t, map[string]string{"private/index.ts": hitFn}, "--auth", "jwt", "--jwt-public-key", pemFile)
		for _, tok := range []string{mint(t, hsSigner(t, jwt.HS256, pemBytes), userClaims("user-1")), algNone} {
			r := g.Do("GET", "/private", nil, bearer(tok))
			expectError(t, r, 401, "UNAUTHORIZED")
			if msg := r.JSON(t)["message"]; msg != secure.ErrAlgorithm.Error() {
				t.Errorf("refused as %q, want %q: no HMAC key exists", msg, secure.ErrAlgorithm)
			}
		}
		if n := syncHits(t, g, "private", bearer(mint(t, rs, userClaims("rsa-user")))); n != 0 {
			t.Fatalf("%d refused requests reached the function", n)
		}
	})
}

// jwksServer serves a JWKS that the test can replace, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve publishes keys (JWK objects).
func (s *jwksServer) serve(t *testing.T, keys ...map[string]string) {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
}

func ecJWK(t *testing.T, kid string, pub *ecdsa.PublicKey) map[string]string {
	t.Helper()
	point, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(point[1:33]),
		"y": base64.RawURLEncoding.EncodeToString(point[33:])}
}

func TestJWKSVerifiesRS256AndES256AndFollowsKeyRotation(t *testing.T) {
	rsa1, rsa2, ec1 := rsaKey(t), rsaKey(t), ecKey(t)
	srv := newJWKSServer(t)
	srv.serve(t, rsaJWK("rsa-1", &rsa1.PublicKey), ecJWK(t, "ec-1", &ec1.PublicKey))
	g := startGateway(t, map[string]string{"private/index.ts": hitFn},
		"--auth", "jwt", "--jwks-url", srv.URL+"/.well-known/jwks.json", "--jwks-min-refresh", "1ms")
	rs1, _ := jwt.NewSignerRS(jwt.RS256, rsa1)
	rs2, _ := jwt.NewSignerRS(jwt.RS256, rsa2)
	es1, _ := jwt.NewSignerES(jwt.ES256, ec1)

	oldToken := mint(t, rs1, userClaims("rs-user"), jwt.WithKeyID("rsa-1"))
	if c := claimsSeen(t, g.Do("GET", "/private", nil, bearer(oldToken))); c["sub"] != "rs-user" {
		t.Fatalf("RS256 from the JWKS: claims %v", c)
	}
	ecToken := mint(t, es1, userClaims("es-user"), jwt.WithKeyID("ec-1"))
	if c := claimsSeen(t, g.Do("GET", "/private", nil, bearer(ecToken))); c["sub"] != "es-user" {
		t.Fatalf("ES256 from the JWKS: claims %v", c)
	}
	newToken := mint(t, rs2, userClaims("rotated-user"), jwt.WithKeyID("rsa-2"))
	before := srv.fetches.Load()
	r := g.Do("GET", "/private", nil, bearer(newToken))
	expectError(t, r, 401, "UNAUTHORIZED")
	if msg := r.JSON(t)["message"]; msg != secure.ErrUnknownKey.Error() {
		t.Fatalf("unknown kid refused as %q", msg)
	}
	if srv.fetches.Load() == before {
		t.Fatal("an unknown kid did not make the gateway look at the JWKS again")
	}
	// A token with a known kid but signed by another key is a bad signature.
	r = g.Do("GET", "/private", nil, bearer(mint(t, rs2, userClaims("x"), jwt.WithKeyID("rsa-1"))))
	expectError(t, r, 401, "UNAUTHORIZED")
	if msg := r.JSON(t)["message"]; msg != secure.ErrBadSignature.Error() {
		t.Fatalf("known kid, other key: refused as %q", msg)
	}

	// Rotation: the issuer now signs with rsa-2 and has retired rsa-1.
	srv.serve(t, rsaJWK("rsa-2", &rsa2.PublicKey), ecJWK(t, "ec-1", &ec1.PublicKey))
	if c := claimsSeen(t, g.Do("GET", "/private", nil, bearer(newToken))); c["sub"] != "rotated-user" {
		t.Fatalf("token with the new kid after rotation: claims %v", c)
	}
	g.WaitLog(func(l logLine) bool { return l.Msg() == "JWKS keys changed" })
	// The retired key's token (verified and cached before) is refused now.
	expectError(t, g.Do("GET", "/private", nil, bearer(oldToken)), 401, "UNAUTHORIZED")
	if c := claimsSeen(t, g.Do("GET", "/private", nil, bearer(ecToken))); c["sub"] != "es-user" {
		t.Fatalf("ES256 key kept across the rotation: claims %v", c)
	}
	if n := syncHits(t, g, "private", bearer(newToken)); n != 4 {
		t.Fatalf("%d requests reached the function, want the 4 accepted ones", n)
	}
}

func TestPublicFunctionsByEachRoute(t *testing.T) {
	secret := randomSecret(t)
	g := startGateway(t, map[string]string{
		"byjson/index.ts":      hitFn,
		"byjson/function.json": `{"auth": false}`,
		"bytoml/index.ts":      hitFn,
		"../config.toml":       "[functions.bytoml]\nverify_jwt = false\n",
		"byflag/index.ts":      hitFn,
		"private/index.ts":     hitFn,
	}, "--auth", "jwt", "--jwt-secret", secret, "--public-functions", "byflag")
	for _, path := range []string{"/byjson", "/functions/v1/byjson", "/bytoml", "/functions/v1/bytoml/x", "/byflag", "/functions/v1/byflag?q=1"} {
		r := g.Get(path)
		if r.Status != 200 {
			t.Errorf("GET %s without a token: %d %q", path, r.Status, r.Body)
			continue
		}
		if _, ok := seen(t, r)["x-auth-claims"]; ok {
			t.Errorf("GET %s: a public function got claims without a token", path)
		}
	}
	expectError(t, g.Get("/private"), 401, "UNAUTHORIZED")
	expectError(t, g.Get("/functions/v1/private"), 401, "UNAUTHORIZED")
}

func TestOptionsPassesWithoutToken(t *testing.T) {
	secret := randomSecret(t)
	token := mint(t, hsSigner(t, jwt.HS256, []byte(secret)), userClaims("user-1"))
	preflight := map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}

	t.Run("no CORS: the function answers", func(t *testing.T) {
		g := startGateway(t, map[string]string{"private/index.ts": hitFn}, "--auth", "jwt", "--jwt-secret", secret)
		for _, h := range []map[string]string{nil, preflight} {
			r := g.Do("OPTIONS", "/private", nil, h)
			if r.Status != 200 || r.JSON(t)["method"] != "OPTIONS" {
				t.Fatalf("OPTIONS without a token: %d %q", r.Status, r.Body)
			}
		}
		expectError(t, g.Get("/private"), 401, "UNAUTHORIZED")
		if n := syncHits(t, g, "private", bearer(token)); n != 2 {
			t.Fatalf("%d requests reached the function, want the 2 OPTIONS", n)
		}
	})
	t.Run("CORS: the gateway answers the preflight", func(t *testing.T) {
		g := startGateway(t, map[string]string{"private/index.ts": hitFn}, "--auth", "jwt", "--jwt-secret", secret, "--cors-origins", "https://app.example")
		r := g.Do("OPTIONS", "/private", nil, preflight)
		if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "authorization") {
			t.Fatalf("preflight without a token: %d %v", r.Status, r.Header)
		}
		// Not a preflight (no Origin): passes to the function, still tokenless.
		if r := g.Do("OPTIONS", "/private", nil, nil); r.Status != 200 || r.JSON(t)["method"] != "OPTIONS" {
			t.Fatalf("plain OPTIONS without a token: %d %q", r.Status, r.Body)
		}
		if n := syncHits(t, g, "private", bearer(token)); n != 1 {
			t.Fatalf("%d requests reached the function, want only the plain OPTIONS", n)
		}
	})
}

func TestTokenFromQueryAndCookie(t *testing.T) {
	secret := randomSecret(t)
	token := mint(t, hsSigner(t, jwt.HS256, []byte(secret)), userClaims("user-1"))

	t.Run("query", func(t *testing.T) {
		g := startGateway(t, map[string]string{"private/index.ts": hitFn}, "--auth", "jwt", "--jwt-secret", secret, "--jwt-token-from", "query", "--jwt-token-name", "token")
		r := g.Get("/private/x?a=1&token=" + token)
		if c := claimsSeen(t, r); c["sub"] != "user-1" {
			t.Fatalf("token from the query: claims %v", c)
		}
		if got := r.JSON(t)["search"]; got != "?a=1&token="+token {
			t.Errorf("the query reached the function as %q", got)
		}
		expectError(t, g.Do("GET", "/private", nil, bearer(token)), 401, "UNAUTHORIZED") // the header is not where tokens are read
		expectError(t, g.Get("/private?token=garbage"), 401, "UNAUTHORIZED")
		expectError(t, g.Get("/private?tok="+token), 401, "UNAUTHORIZED")
		if strings.Contains(g.logs.text(), token) {
			t.Error("the token from the query string reached the log")
		}
	})
	t.Run("cookie", func(t *testing.T) {
		g := startGateway(t, map[string]string{"private/index.ts": hitFn}, "--auth", "jwt", "--jwt-secret", secret, "--jwt-token-from", "cookie", "--jwt-token-name", "sb-access-token")
		if c := claimsSeen(t, g.Do("GET", "/private", nil, map[string]string{"Cookie": "theme=dark; sb-access-token=" + token + "; lang=en"})); c["sub"] != "user-1" {
			t.Fatalf("token from the cookie: claims %v", c)
		}
		expectError(t, g.Do("GET", "/private", nil, bearer(token)), 401, "UNAUTHORIZED")
		expectError(t, g.Do("GET", "/private", nil, map[string]string{"Cookie": "sb-access-token=garbage"}), 401, "UNAUTHORIZED")
		expectError(t, g.Do("GET", "/private", nil, map[string]string{"Cookie": "other=" + token}), 401, "UNAUTHORIZED")
	})
}

func TestForgedClaimsHeaderNeverReachesFunction(t *testing.T) {
	secret := randomSecret(t)
	token := mint(t, hsSigner(t, jwt.HS256, []byte(secret)), userClaims("user-1"))
	g := startGateway(t, map[string]string{"open/index.ts": hitFn, "private/index.ts": hitFn},
		"--auth", "jwt", "--jwt-secret", secret, "--public-functions", "open")
	forged := b64(`{"sub":"admin","role":"service_role"}`)

	// Public function: no claims at all, with or without a token.
	for _, h := range []map[string]string{{"X-Auth-Claims": forged}, {"X-Auth-Claims": forged, "Authorization": "Bearer " + token}} {
		if v, ok := seen(t, g.Do("GET", "/open", nil, h))["x-auth-claims"]; ok {
			t.Errorf("public function got x-auth-claims %v (sent %v)", v, h)
		}
	}
	// Protected function: the verified claims replace the forged ones.
	h := bearer(token)
	h["X-Auth-Claims"] = forged
	if c := claimsSeen(t, g.Do("GET", "/private", nil, h)); c["sub"] != "user-1" || c["role"] != "authenticated" {
		t.Errorf("protected function got claims %v, want the token's", c)
	}
	// Several copies, in any case, sent directly.
	req, _ := http.NewRequest("GET", g.URL+"/private", nil)
	req.Header["Authorization"] = []string{"Bearer " + token}
	req.Header["X-Auth-Claims"] = []string{forged, forged}
	req.Header["x-auth-claims"] = []string{forged}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Headers map[string]string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if raw, _ := base64.RawURLEncoding.DecodeString(body.Headers["x-auth-claims"]); !strings.Contains(string(raw), `"sub":"user-1"`) || strings.Contains(body.Headers["x-auth-claims"], forged) {
		t.Errorf("with repeated forged headers the function saw x-auth-claims %q", body.Headers["x-auth-claims"])
	}
	// Forged claims alone are no credential.
	expectError(t, g.Do("GET", "/private", nil, map[string]string{"X-Auth-Claims": forged}), 401, "UNAUTHORIZED")
}

// cleanEnv is the test process environment without anything that would
// configure the gateway's auth.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "EDGEWAY_") || k == "JWT_SECRET" || k == "SUPABASE_JWT_SECRET" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func TestProductionRefusesUnsafeAuthConfig(t *testing.T) {
	bin, deno := binPath(t), denoPath(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`})
	cases := []struct {
		name    string
		args    []string
		env     []string
		want    []string
		secrets []string // must not appear in the message
	}{
		{"well-known secret", []string{"--jwt-secret", secure.DevJWTSecret}, nil, []string{"--jwt-secret", "well-known"}, []string{secure.DevJWTSecret}},
		{"well-known self-hosted secret", []string{"--jwt-secret", secure.DevSelfHostedJWTSecret}, nil, []string{"--jwt-secret", "well-known"}, []string{secure.DevSelfHostedJWTSecret}},
		{"well-known secret from JWT_SECRET", nil, []string{"JWT_SECRET=" + secure.DevJWTSecret}, []string{"environment JWT_SECRET:", "well-known"}, []string{secure.DevJWTSecret}},
		{"short secret", []string{"--jwt-secret", "0123456789abcdef0123456789abcde"}, nil, []string{"--jwt-secret", "32"}, []string{"0123456789abcdef0123456789abcde"}},
		{"no key", nil, nil, []string{"--auth"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"serve", "--functions", dir, "--deno", deno, "--port", "0"}, c.args...)...)
			cmd.Env = append(cleanEnv(), c.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("production start succeeded: %s", out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one line, got %d: %s", len(lines), out)
			}
			for _, w := range c.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("error %q does not name %q", lines[0], w)
				}
			}
			for _, s := range c.secrets {
				if strings.Contains(lines[0], s) {
					t.Errorf("error %q repeats the secret", lines[0])
				}
			}
		})
	}
}

func TestDevModeAcceptsLocalAnonKey(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"private/index.ts": hitFn, "env/index.ts": envFn})
	// launch passes --auth none; --auth jwt (the default) undoes that, so
	// this is `edgeway serve --dev` with no key flag at all.
	for _, k := range []string{"JWT_SECRET", "SUPABASE_JWT_SECRET", "SUPABASE_ANON_KEY"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Setenv(k, v)
			os.Unsetenv(k)
		}
	}
	g := launch(t, dir, "--dev", "--auth", "jwt")
	if err := g.waitListening(); err != nil {
		t.Fatalf("--dev did not start: %v\n%s", err, g.logs.text())
	}
	g.WaitLog(func(l logLine) bool { return strings.Contains(l.Msg(), "well-known local JWT secret") })
	c := claimsSeen(t, g.Do("GET", "/private", nil, bearer(secure.DevAnonKey)))
	if c["role"] != "anon" || c["iss"] != "supabase-demo" {
		t.Fatalf("anon key claims %v", c)
	}
	expectError(t, g.Get("/private"), 401, "UNAUTHORIZED")
	expectError(t, g.Do("GET", "/private", nil, bearer(mint(t, hsSigner(t, jwt.HS256, []byte(randomSecret(t))), userClaims("x")))), 401, "UNAUTHORIZED")
	r := g.Do("GET", "/env?k=SUPABASE_ANON_KEY&k=SUPABASE_SERVICE_ROLE_KEY", nil, bearer(secure.DevServiceRoleKey))
	if m := r.JSON(t); m["SUPABASE_ANON_KEY"] != secure.DevAnonKey || m["SUPABASE_SERVICE_ROLE_KEY"] != secure.DevServiceRoleKey {
		t.Fatalf("--dev function environment: %v", m)
	}
}

func TestEnvLayersResolveInOrder(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "extra.env")
	if err := os.WriteFile(envFile, []byte("LAYER_C=env-file\nLAYER_D=env-file\nLAYER_E=env-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jwtSecret := randomSecret(t)
	for k, v := range map[string]string{
		"LAYER_A": "gateway", "LAYER_B": "gateway", "LAYER_C": "gateway", "LAYER_D": "gateway", "LAYER_E": "gateway",
		"EDGEWAY_E2E_PROBE":   "edgeway-setting",
		"JWT_SECRET":          jwtSecret,
		"SUPABASE_JWT_SECRET": randomSecret(t),
		"COPY_OF_JWT_SECRET":  jwtSecret,
		"COPY_OF_INTERNAL":    internalKey,
	} {
		t.Setenv(k, v)
	}
	g := startGateway(t, map[string]string{
		".env":             "LAYER_B=functions-env\nLAYER_C=functions-env\nLAYER_D=functions-env\nLAYER_E=functions-env\n",
		"layered/index.ts": envFn,
		"layered/.env":     "LAYER_E=function-env\n",
		"plain/index.ts":   envFn,
	}, "--env-file", envFile, "--env", "LAYER_D=env-flag", "--env", "LAYER_E=env-flag", "--internal-key", internalKey)
	keys := "?k=LAYER_A&k=LAYER_B&k=LAYER_C&k=LAYER_D&k=LAYER_E&k=EDGEWAY_E2E_PROBE&k=JWT_SECRET&k=SUPABASE_JWT_SECRET&k=COPY_OF_JWT_SECRET&k=COPY_OF_INTERNAL"
	want := map[string]any{
		"LAYER_A": "gateway", "LAYER_B": "functions-env", "LAYER_C": "env-file", "LAYER_D": "env-flag", "LAYER_E": "function-env",
		"EDGEWAY_E2E_PROBE": nil, "JWT_SECRET": nil, "SUPABASE_JWT_SECRET": nil, "COPY_OF_JWT_SECRET": nil, "COPY_OF_INTERNAL": nil,
	}
	got := g.Get("/layered" + keys).JSON(t)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("layered: %s = %v, want %v", k, got[k], v)
		}
	}
	// Another function's folder .env does not leak: it sees --env.
	if got := g.Get("/plain?k=LAYER_E").JSON(t); got["LAYER_E"] != "env-flag" {
		t.Errorf("plain: LAYER_E = %v, want env-flag", got["LAYER_E"])
	}
}

func TestEnvPassthroughNarrowsGatewayEnv(t *testing.T) {
	t.Setenv("PASS_ME", "passed")
	t.Setenv("DROP_ME", "dropped")
	t.Setenv("SUPABASE_URL", "http://supabase.example")
	g := startGateway(t, map[string]string{
		".env":       "FROM_FILE=file\n",
		"f/index.ts": envFn,
	}, "--env-passthrough", "PASS_ME", "--env", "FROM_FLAG=flag")
	got := g.Get("/f?k=PASS_ME&k=DROP_ME&k=SUPABASE_URL&k=FROM_FILE&k=FROM_FLAG&k=HOME").JSON(t)
	want := map[string]any{"PASS_ME": "passed", "DROP_ME": nil, "SUPABASE_URL": "http://supabase.example", "FROM_FILE": "file", "FROM_FLAG": "flag", "HOME": nil}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestSecretValuesMaskedInLog(t *testing.T) {
	apiSecret := "sk_live_" + randomSecret(t)[:24]
	serviceToken := "tok-" + randomSecret(t)[:20]
	g := startGateway(t, map[string]string{
		"leaky/index.ts": `Deno.serve(() => {
  console.log(Deno.env.get("API_SECRET_KEY"));
  console.error("calling upstream with key " + Deno.env.get("API_SECRET_KEY") + " and " + Deno.env.get("SERVICE_TOKEN") + " now");
  console.log("plain setting " + Deno.env.get("PLAIN_SETTING"));
  return new Response("logged");
});`,
		"leaky/.env": "API_SECRET_KEY=" + apiSecret + "\nPLAIN_SETTING=visible-value\n",
	}, "--env", "SERVICE_TOKEN="+serviceToken)
	if r := g.Get("/leaky"); r.Status != 200 {
		t.Fatalf("leaky: %d %q", r.Status, r.Body)
	}
	g.WaitLog(func(l logLine) bool {
		return l.Str("function") == "leaky" && l.Str("stream") == "stdout" && l.Msg() == "***"
	})
	g.WaitLog(func(l logLine) bool {
		return l.Str("function") == "leaky" && l.Str("stream") == "stderr" && l.Msg() == "calling upstream with key *** and *** now"
	})
	g.WaitLog(func(l logLine) bool { return l.Str("function") == "leaky" && l.Msg() == "plain setting visible-value" })
	text := g.logs.text()
	for _, s := range []string{apiSecret, serviceToken, apiSecret[:12]} {
		if strings.Contains(text, s) {
			t.Errorf("the gateway log contains the secret %q", s)
		}
	}
}

// probeFn tries what it is asked to (?read=<path>, ?env=<name>,
// ?fetch=<url>) and reports "ok:<result>" or "err:<error name>" for each.
const probeFn = `Deno.serve(async (req) => {
  const q = new URL(req.url).searchParams;
  const out: Record<string, string> = {};
  const attempt = async (label: string, f: () => Promise<string> | string) => {
    try { out[label] = "ok:" + (await f()).trim(); } catch (e) { out[label] = "err:" + (e as Error).name; }
  };
  for (const p of q.getAll("read")) await attempt("read:" + p, () => Deno.readTextFile(p));
  for (const k of q.getAll("env")) await attempt("env:" + k, () => Deno.env.get(k) ?? "(unset)");
  for (const u of q.getAll("fetch")) await attempt("fetch:" + u, async () => (await fetch(u)).text());
  return Response.json(out);
});
`

func TestPermissionProfilesConfineFunctions(t *testing.T) {
	var upstreamHits atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamHits.Add(1)
		w.Write([]byte("pong"))
	}))
	defer upstream.Close()
	t.Setenv("PROBE_VAR", "visible")
	g := startGateway(t, map[string]string{
		"_shared/shared.txt":   "shared-data",
		"std/index.ts":         probeFn,
		"std/own.txt":          "own-data",
		"strict/index.ts":      probeFn,
		"strict/own.txt":       "strict-own",
		"strict/function.json": `{"permissions": "strict"}`,
		"none/index.ts":        probeFn,
		"none/own.txt":         "none-own",
		"none/function.json":   `{"permissions": "none"}`,
		"over/index.ts":        probeFn,
		"over/function.json":   `{"permissions": "strict"}`,
		"sibling/index.ts":     hitFn,
		"sibling/secret.txt":   "sibling-data",
		"../outside.txt":       "outside-data",
	}, "--function-permissions", "over=permissive")
	root := g.Dir
	sibling := filepath.Join(root, "sibling", "secret.txt")
	outside := filepath.Join(filepath.Dir(root), "outside.txt")
	shared := filepath.Join(root, "_shared", "shared.txt")
	_, hostErr := os.Stat("/etc/hostname")

	probe := func(fn string, q url.Values) map[string]any {
		t.Helper()
		r := g.Get("/" + fn + "?" + q.Encode())
		if r.Status != 200 {
			t.Fatalf("%s: %d %q", fn, r.Status, r.Body)
		}
		return r.JSON(t)
	}
	check := func(fn string, got map[string]any, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %s", fn, k, got[k], v)
			}
		}
	}
	readsOutside := func(q url.Values) {
		q.Add("read", sibling)
		q.Add("read", "../sibling/secret.txt")
		q.Add("read", outside)
		if hostErr == nil {
			q.Add("read", "/etc/hostname")
		}
	}

	// Default profile (standard): env and net, reads only its folder and _shared.
	q := url.Values{"read": {filepath.Join(root, "std", "own.txt"), "./own.txt", shared}, "env": {"PROBE_VAR"}, "fetch": {upstream.URL}}
	readsOutside(q)
	got := probe("std", q)
	// With a private /tmp (sandbox_test.go) what lies under the host's /tmp,
	// as the test's folders do, is not even there.
	hidden := "err:NotCapable"
	if tmpMode(g) == "private" {
		hidden = "err:NotFound"
	}
	want := map[string]string{
		"read:" + filepath.Join(root, "std", "own.txt"): "ok:own-data",
		"read:./own.txt":             "ok:own-data",
		"read:" + shared:             "ok:shared-data",
		"read:" + sibling:            hidden,
		"read:../sibling/secret.txt": hidden,
		"read:" + outside:            hidden,
		"env:PROBE_VAR":              "ok:visible",
		"fetch:" + upstream.URL:      "ok:pong",
	}
	if hostErr == nil {
		want["read:/etc/hostname"] = "err:NotCapable"
	}
	check("std", got, want)

	// strict: net but no env.
	got = probe("strict", url.Values{"read": {"./own.txt", sibling}, "env": {"PROBE_VAR"}, "fetch": {upstream.URL}})
	check("strict", got, map[string]string{"read:./own.txt": "ok:strict-own", "read:" + sibling: "err:NotCapable", "env:PROBE_VAR": "err:NotCapable", "fetch:" + upstream.URL: "ok:pong"})

	// none: neither net nor env; its own folder stays readable.
	before := upstreamHits.Load()
	got = probe("none", url.Values{"read": {"./own.txt", sibling}, "env": {"PROBE_VAR"}, "fetch": {upstream.URL}})
	check("none", got, map[string]string{"read:./own.txt": "ok:none-own", "read:" + sibling: "err:NotCapable", "env:PROBE_VAR": "err:NotCapable", "fetch:" + upstream.URL: "err:NotCapable"})
	if n := upstreamHits.Load() - before; n != 0 {
		t.Errorf("the none function's fetch reached the server %d times", n)
	}

	// --function-permissions over=permissive beats function.json's strict.
	q = url.Values{"env": {"PROBE_VAR"}}
	readsOutside(q)
	got = probe("over", q)
	want = map[string]string{"env:PROBE_VAR": "ok:visible", "read:" + sibling: "ok:sibling-data", "read:../sibling/secret.txt": "ok:sibling-data", "read:" + outside: "ok:outside-data"}
	if hostErr == nil {
		host, _ := os.ReadFile("/etc/hostname")
		want["read:/etc/hostname"] = "ok:" + strings.TrimSpace(string(host))
	}
	check("over", got, want)
	if n := upstreamHits.Load(); n != 2 {
		t.Errorf("upstream server saw %d fetches, want 2 (std and strict)", n)
	}
}
