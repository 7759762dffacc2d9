package e2e

import (
	"strings"
	"testing"
)

// An error a function logs with its stack is one log event, not one per
// frame.
func TestWorkerStackTraceIsOneEvent(t *testing.T) {
	g := startGateway(t, map[string]string{"boom/index.ts": `function inner() { throw new Error("kaboom"); }
Deno.serve(() => { try { inner(); } catch (e) { console.error(e); } return new Response("logged"); });`})
	expectOK(t, g.Get("/boom"))
	l := g.WaitLog(func(l logLine) bool { return l.Str("stream") == "stderr" && strings.Contains(l.Msg(), "kaboom") })
	if !strings.Contains(l.Msg(), "\n    at inner (") {
		t.Fatalf("the error's event lacks its stack: %q", l.Msg())
	}
	if n := g.logs.count(func(l logLine) bool { return strings.HasPrefix(strings.TrimSpace(l.Msg()), "at ") }); n != 0 {
		t.Fatalf("%d stack frames logged as events of their own", n)
	}
}
