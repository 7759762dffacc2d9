package e2e

import "testing"

// A pre-booted worker's console lines are tagged as a fresh worker's are:
// the level of the console method and the request's id, with the tag
// stripped (its token is given at boot, before the function is known).
func TestPrewarmConsoleLinesCarryRequestID(t *testing.T) {
	g := startGatewayOutsideTmp(t, map[string]string{
		"logs/index.ts": `Deno.serve((req) => { console.error("pooled line " + new URL(req.url).pathname); return new Response("logs"); });`,
	}, nil, "--prewarm-pool", "1")
	g.WaitLog(isPooledBoot)
	if r := g.Do("GET", "/logs/x", nil, map[string]string{"x-request-id": "rid-pooled-1"}); r.Status != 200 {
		t.Fatalf("logs: %d %s", r.Status, r.Body)
	}
	g.WaitLog(pooledStart("logs"))
	l := g.WaitLog(func(l logLine) bool { return l.Str("function") == "logs" && l.Msg() == "pooled line /x" })
	if l.Str("level") != "error" || l.Str("request_id") != "rid-pooled-1" {
		t.Errorf("pooled worker's console.error line: %v", l)
	}
}
