package e2e

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// slowBootFn answers body after its module has waited ms milliseconds at
// load time, which delays the worker's readiness (a slow cold start).
func slowBootFn(body string, ms int) string {
	return fmt.Sprintf(`await new Promise((r) => setTimeout(r, %d));
Deno.serve(() => new Response(%q));`, ms, body)
}

// A SIGTERM during a reload does not wait for the reload's boots, and a
// burst of SIGHUPs is coalesced instead of starting a goroutine each.
func TestStopDuringReloadDoesNotWaitForItsBoots(t *testing.T) {
	g := startGateway(t, map[string]string{"app/index.ts": `Deno.serve(() => new Response("v1"));`},
		"--boot-timeout", "10m")
	expectBody(t, g, "/app", "v1")
	// v2 takes ten minutes to boot.
	write(t, g, "app/index.ts", slowBootFn("v2", 600_000))
	const hups = 10
	for i := 1; i <= hups; i++ {
		g.Signal(syscall.SIGHUP)
		g.WaitLogCount(func(l logLine) bool { return l.Msg() == "SIGHUP: reload requested" }, i)
	}
	// The first reload boots v2 (its worker starting); v1 keeps serving.
	g.WaitLogCount(func(l logLine) bool { return l.Msg() == "starting worker" && l.Str("function") == "app" }, 2)
	expectBody(t, g, "/app", "v1")
	g.Signal(syscall.SIGTERM)
	if code := g.WaitExit(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	// One rescan ran; the others were coalesced into at most one pending.
	if n := g.logs.count(func(l logLine) bool { return l.Msg() == "reloading functions" }); n > 2 {
		t.Fatalf("%d rescans for %d SIGHUPs during one boot, want them coalesced", n, hups)
	}
	waitNoProcesses(t, g.RunDir)
}

// No request is dropped by a reload, whatever state the function is in:
// requests waiting for the old version's cold start are answered, by the
// old version or, once it is retired, by the new one.
func TestReloadDuringColdStartDropsNoRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newBoot int // ms
	}{
		{"new version ready first", 0},
		{"old version ready first", 4000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, map[string]string{"cold/index.ts": slowBootFn("v1", 2000)})
			const clients = 4
			var wg sync.WaitGroup
			results := make([]Response, clients)
			errs := make([]error, clients)
			for i := 0; i < clients; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = g.try("GET", "/cold", nil, nil)
				}()
			}
			g.WaitLog(func(l logLine) bool { return l.Msg() == "starting worker" && l.Str("function") == "cold" })
			write(t, g, "cold/index.ts", slowBootFn("v2", tc.newBoot))
			g.Signal(syscall.SIGHUP)
			wg.Wait()
			for i := range results {
				if errs[i] != nil {
					t.Fatalf("request %d: %v", i, errs[i])
				}
				if r := results[i]; r.Status != 200 || !strings.HasPrefix(string(r.Body), "v") {
					t.Fatalf("request %d waiting for a cold start across a reload: %d %s %q", i, r.Status, r.Header.Get("X-Edgeway-Error"), r.Body)
				}
			}
			reloaded(g, "cold", 1)
			expectBody(t, g, "/cold", "v2")
		})
	}
}
