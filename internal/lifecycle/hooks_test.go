package lifecycle

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The host's hooks hear the function go ready, a worker fail its health
// checks, the function go cold while it is replaced, ready again, and cold
// at the stop; a panicking hook changes nothing.
func TestHooksReportReadyColdAndUnhealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, healthConfig(), testOptions())
		var mu sync.Mutex
		var events []string
		add := func(e string) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}
		h.m.s.hooks = Hooks{
			FunctionReady: func(fn string) { add("ready " + fn); panic("hook bug") },
			FunctionCold:  func(fn string) { add("cold " + fn) },
			WorkerUnhealthy: func(fn string, pid, failures int) {
				add(fmt.Sprintf("unhealthy %s %d", fn, failures))
			},
		}
		h.configure = func(f *fakeProc) { f.mute.Store(h.started() == 0) }
		h.run()
		h.sleepUntil(22 * time.Second) // three unanswered pings
		h.expect(1, 0, 0)
		h.stop()
		mu.Lock()
		defer mu.Unlock()
		want := []string{"ready fn", "unhealthy fn 3", "cold fn", "ready fn", "cold fn"}
		if !slices.Equal(events, want) {
			t.Fatalf("events %q, want %q", events, want)
		}
	})
}
