package e2e

import "testing"

// 429s are logged at warn, sampled: ten refusals in a row give one line (or
// a few on a very slow machine, at most one per 10 s), naming the function,
// the client and its bucket.
func TestRateLimitedIsWarnedSampled(t *testing.T) {
	g := startGateway(t, map[string]string{"lim/index.ts": hitFn, "lim/function.json": `{"rpm": 1}`}, "--trusted-proxies", "none")
	expectOK(t, g.Get("/lim"))
	const refusals = 10
	for i := 0; i < refusals; i++ {
		expectError(t, g.Get("/lim"), 429, "RATE_LIMITED")
	}
	isWarning := func(l logLine) bool {
		return l.Msg() == "request refused: rate limited (429; sampled: at most one line per 10s)"
	}
	w := g.WaitLog(isWarning)
	if w.Str("level") != "warn" || w.Str("function") != "lim" || w.Str("client_ip") != "127.0.0.1" || w.Str("bucket") != "client_ip" || w.Int("rpm") != 1 {
		t.Fatalf("warning %v", w)
	}
	g.WaitLogCount(func(l logLine) bool { return l.Msg() == "request" && l.Int("status") == 429 }, refusals)
	if n := g.logs.count(isWarning); n >= refusals {
		t.Fatalf("%d warnings for %d refusals: not sampled", n, refusals)
	}
}
