package e2e

import (
	"strings"
	"testing"
)

func TestPanicOnARequestIsContained(t *testing.T) {
	t.Setenv("EDGEWAY_BIN", faultBinary(t))
	g := startGateway(t, map[string]string{
		"hello/index.ts": `Deno.serve(() => new Response("hi"));`,
	}, "--internal-key", internalKey)
	if r := g.Get("/hello"); r.Status != 200 {
		t.Fatalf("warm-up: %d %q", r.Status, r.Body)
	}
	pids := g.WorkerPIDs()
	const panics = 5
	for i := 0; i < panics; i++ {
		resp := rawGet(t, g, "/__edgeway_fault/panic")
		var e Response
		e.Status, e.Header = resp.StatusCode, resp.Header
		e.Body = readAll(t, resp)
		expectError(t, e, 500, "INTERNAL")
		if !resp.Close {
			t.Fatalf("a panicked request's connection must close; header %v", resp.Header)
		}
	}
	// The gateway and its worker are still there.
	if r := g.Get("/hello"); r.Status != 200 || string(r.Body) != "hi" {
		t.Fatalf("after the panics: %d %q", r.Status, r.Body)
	}
	if now := g.WorkerPIDs(); len(pids) == 0 || len(now) != len(pids) || now[0] != pids[0] {
		t.Fatalf("workers changed across the panics: %v → %v", pids, now)
	}
	m := scrape(t, g, "")
	expectMetrics(t, m, map[string]float64{`edgeway_panics_total{where="request"}`: panics})
	// The stack is logged once, not once per panic: once the access log
	// line of the last request is out, every earlier line is.
	g.WaitLogCount(func(l logLine) bool { return l.Msg() == "request" }, 2)
	stacks := g.logs.count(func(l logLine) bool { return l.Msg() == "recovered from a panic" })
	if stacks != 1 {
		t.Fatalf("%d stacks logged for %d panics at one site, want 1", stacks, panics)
	}
	line := g.WaitLog(func(l logLine) bool { return l.Msg() == "recovered from a panic" })
	if !strings.Contains(line.Str("stack"), "injectFault") || line.Str("where") != "request" {
		t.Fatalf("panic log line lacks the stack or where: %v", line)
	}
}

// The released binary has no fault hook: the path is an ordinary 404.
func TestReleasedBinaryHasNoFaultHook(t *testing.T) {
	g := startGateway(t, map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`})
	expectError(t, g.Get("/__edgeway_fault/panic"), 404, "NOT_FOUND")
}
