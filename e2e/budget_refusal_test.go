package e2e

import (
	"testing"
)

// Caveat 3 of issue 15: with --max-workers-total reached and every worker
// busy, a request to a function without a worker waited for its whole
// deadline and got 504 TIMEOUT (nothing could be evicted to start its
// worker). It is refused at once with 503 OVERLOADED and Retry-After, as
// Envoy answers a request its circuit breakers have no room for; once a
// worker is idle again, room is made as before.
func TestWorkerBudgetSpentWithEveryWorkerBusyRefusesAtOnce(t *testing.T) {
	g := startGateway(t, map[string]string{
		"hold/index.ts": `Deno.serve(async (req) => {
  if (new URL(req.url).searchParams.has("hold")) {
    console.log("holding");
    await new Promise((r) => setTimeout(r, 3000));
  }
  return new Response("held");
});`,
		"other/index.ts": `Deno.serve(() => new Response("other"));`,
	}, "--max-workers-total", "1", "--timeout", "30s", "--internal-key", internalKey)
	if r := g.Get("/hold"); r.Status != 200 {
		t.Fatalf("warm-up: %d %q", r.Status, r.Body)
	}
	held := make(chan Response, 1)
	go func() {
		r, err := g.try("GET", "/hold?hold", nil, nil)
		if err != nil {
			t.Errorf("held request: %v", err)
		}
		held <- r
	}()
	g.WaitLog(func(l logLine) bool { return l.Msg() == "holding" })

	r := g.Get("/other")
	expectError(t, r, 503, "OVERLOADED")
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After = %q", ra)
	}
	if h := <-held; h.Status != 200 {
		t.Fatalf("held request: %d %q", h.Status, h.Body)
	}
	// The first request after may still be refused: the function's view
	// of the budget dates from its last request, and that request asks
	// again. The next one makes room (the idle hold worker is stopped).
	r = g.Get("/other")
	if r.Status == 503 {
		r = g.Get("/other")
	}
	if r.Status != 200 || string(r.Body) != "other" {
		t.Fatalf("once a worker is idle: %d %q", r.Status, r.Body)
	}
	if n := scrape(t, g, "")["edgeway_worker_budget_refusals_total"]; n < 1 {
		t.Fatalf("edgeway_worker_budget_refusals_total = %v", n)
	}
}

// Caveat 3 of issue 15, boot backoff: after a failed boot no other starts
// for --boot-retry-backoff, and with nothing running a request arriving
// meanwhile waited for the next attempt (here 30 s). It is refused at
// once with 503 BOOT_ERROR and a Retry-After saying when the next boot
// may start, as nginx and Envoy answer when no upstream is healthy.
func TestBootBackoffRefusesAtOnce(t *testing.T) {
	g := startGateway(t, map[string]string{
		"broken/index.ts": `Deno.serve(() => new Response("x")`, // syntax error
	}, "--boot-retry-backoff", "30s", "--timeout", "60s", "--internal-key", internalKey)
	for i := 0; i < 3; i++ {
		r := g.Get("/broken")
		expectError(t, r, 503, "BOOT_ERROR")
		if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("request %d: Retry-After = %q, want the time until the next boot", i, ra)
		}
	}
	if n := scrape(t, g, "")[`edgeway_worker_spawns_total{function="broken"}`]; n != 1 {
		t.Fatalf("%v boots, want 1 (the others were refused during the backoff)", n)
	}
}
