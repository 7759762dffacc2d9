package e2e

import (
	"strings"
	"testing"
)

// 429s are logged at warn, sampled: ten refusals in a row give one line (or
// a few on a very slow machine, at most one per 10 s), naming the function,
// the client and its bucket.
func TestRateLimitedIsWarnedSampled(t *testing.T) {
	g := startGateway(t, map[string]string{"lim/index.ts": hitFn, "lim/function.json": `{"rpm": 1}`}, "--trusted-proxies", "none")
	expectOK(t, g.Get("/lim"))
	const refusals = 10
	ids := map[string]bool{}
	for i := 0; i < refusals; i++ {
		r := g.Get("/lim")
		expectError(t, r, 429, "RATE_LIMITED")
		ids[r.Header.Get("X-Request-Id")] = true
	}
	isWarning := func(l logLine) bool {
		return l.Msg() == "request refused: rate limited (429; sampled: at most one line per 10s)"
	}
	w := g.WaitLog(isWarning)
	if w.Str("level") != "warn" || w.Str("function") != "lim" || w.Str("client_ip") != "127.0.0.1" || w.Str("bucket") != "client_ip" || w.Int("rpm") != 1 {
		t.Fatalf("warning %v", w)
	}
	if !ids[w.Str("request_id")] {
		t.Errorf("warning's request_id %q is none of the refused requests' X-Request-Id", w.Str("request_id"))
	}
	g.WaitLogCount(func(l logLine) bool { return l.Msg() == "request" && l.Int("status") == 429 }, refusals)
	if n := g.logs.count(isWarning); n >= refusals {
		t.Fatalf("%d warnings for %d refusals: not sampled", n, refusals)
	}
}

// An unauthorized request's log line carries its request id.
func TestUnauthorizedLogCarriesRequestID(t *testing.T) {
	g := startGateway(t, map[string]string{"private/index.ts": hitFn}, "--auth", "jwt", "--jwt-secret", strings.Repeat("k", 40))
	expectError(t, g.Do("GET", "/private", nil, map[string]string{"X-Request-Id": "trace-4711"}), 401, "UNAUTHORIZED")
	l := g.WaitLog(func(l logLine) bool { return l.Msg() == "request refused: unauthorized" })
	if l.Str("request_id") != "trace-4711" || l.Str("function") != "private" {
		t.Fatalf("refusal line %v", l)
	}
}
