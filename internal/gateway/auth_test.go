package gateway

import (
	"encoding/base64"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"edgeway.dev/edgeway/internal/secure"

	"github.com/cristalhq/jwt/v5"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

func testAPIKeys(t testing.TB) *secure.APIKeys {
	t.Helper()
	file := `{"name":"ci","sha256":"` + secure.HashAPIKey("key-ci") + `"}` + "\n" +
		`{"name":"svc","sha256":"` + secure.HashAPIKey("key-svc") + `","claims":{"role":"service_role"}}` + "\n"
	k, err := secure.ParseAPIKeys(strings.NewReader(file), "keys")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Every Authenticator goes through the same guard: a refusal is 401
// UNAUTHORIZED and never reaches the worker, an accepted request carries
// the Authenticator's claims as X-Auth-Claims, and a public function or
// OPTIONS skips the check. (A client's own X-Auth-Claims is stripped from
// the raw header block, which these requests do not have: see the e2e
// tests.)
func TestAuthenticatorsGuardFunctions(t *testing.T) {
	var seenClaims atomic.Value
	var hits atomic.Int64
	sock := startFakeWorker(t, func(ctx *fasthttp.RequestCtx) {
		hits.Add(1)
		seenClaims.Store(string(ctx.Request.Header.Peek("X-Auth-Claims")))
		helloHandler(ctx)
	})
	secret := []byte("a-test-secret-that-is-long-enough-0123456789")
	v, err := secure.NewVerifier(secure.VerifierOptions{Secret: secret, CacheSize: 16, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	signer, _ := jwt.NewSignerHS(jwt.HS256, secret)
	tok, err := jwt.NewBuilder(signer).Build(map[string]any{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	keys := testAPIKeys(t)
	type hdrs map[string]string
	for _, c := range []struct {
		name    string
		auth    Authenticator
		public  bool
		method  string
		headers hdrs
		status  int
		message string
		claims  string
	}{
		{"none", NoAuth{}, false, "GET", nil, 200, "", ""},
		{"nil", nil, false, "GET", nil, 200, "", ""},
		{"jwt valid", &JWTAuth{Verifier: v}, false, "GET", hdrs{"Authorization": "Bearer " + tok.String()}, 200, "", string(tok.ClaimsPart())},
		{"jwt missing", &JWTAuth{Verifier: v}, false, "GET", nil, 401, "missing authorization token", ""},
		{"jwt bad", &JWTAuth{Verifier: v}, false, "GET", hdrs{"Authorization": "Bearer x.y.z"}, 401, "", ""},
		{"jwt from apikey header is not read", &JWTAuth{Verifier: v}, false, "GET", hdrs{"apikey": tok.String()}, 401, "missing authorization token", ""},
		{"apikey header", keys, false, "GET", hdrs{"apikey": "key-ci"}, 200, "", b64(`{"sub":"ci"}`)},
		{"apikey bearer", keys, false, "GET", hdrs{"Authorization": "Bearer key-svc"}, 200, "", b64(`{"role":"service_role","sub":"svc"}`)},
		{"apikey header wins", keys, false, "GET", hdrs{"apikey": "key-ci", "Authorization": "Bearer " + tok.String()}, 200, "", b64(`{"sub":"ci"}`)},
		{"apikey unknown", keys, false, "GET", hdrs{"apikey": "key-nope"}, 401, "unknown API key", ""},
		{"apikey jwt is not a key", keys, false, "GET", hdrs{"Authorization": "Bearer " + tok.String()}, 401, "unknown API key", ""},
		{"apikey missing", keys, false, "GET", nil, 401, "missing authorization token", ""},
		{"apikey public", keys, true, "GET", nil, 200, "", ""},
		{"apikey options", keys, false, "OPTIONS", nil, 200, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newTestGateway(t, sock)
			g.auth = authenticator(c.auth)
			g.sup.Lookup([]byte("hello")).Config.Public = c.public
			ctx := newCtx("/hello")
			ctx.Request.Header.SetMethod(c.method)
			for k, v := range c.headers {
				ctx.Request.Header.Set(k, v)
			}
			seenClaims.Store("")
			before := hits.Load()
			g.Handle(ctx)
			if got := ctx.Response.StatusCode(); got != c.status {
				t.Fatalf("status %d %s, want %d", got, ctx.Response.Body(), c.status)
			}
			if c.status != 200 {
				if hits.Load() != before {
					t.Fatal("a refused request reached the worker")
				}
				body := string(ctx.Response.Body())
				if !strings.Contains(body, `"UNAUTHORIZED"`) || !strings.Contains(body, c.message) {
					t.Fatalf("body %s, want UNAUTHORIZED %q", body, c.message)
				}
				return
			}
			if got := seenClaims.Load().(string); got != c.claims {
				t.Fatalf("worker saw X-Auth-Claims %q, want %q", got, c.claims)
			}
		})
	}
}

// A warm request with an API key through every guard allocates nothing.
func TestChainWithAPIKeyAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	sock := startFakeWorker(t, helloHandler)
	g := newTestGateway(t, sock, pipelineOn)
	g.auth = testAPIKeys(t)
	ctx := newCtx("/hello")
	run := func() {
		ctx.Request.SetRequestURI("/hello")
		ctx.Request.Header.Set("apikey", "key-svc")
		ctx.Response.Reset()
		g.Handle(ctx)
	}
	run()
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("status %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if a := testing.AllocsPerRun(200, run); a != 0 {
		t.Fatalf("warm API-key request allocates %.1f times", a)
	}
}
