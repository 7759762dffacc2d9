package lifecycle

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Item 1 of issue 15 (lifecycle side): a panic in a Manager goroutine is
// recovered and counted, and the manager goes on from its current state:
// workers it owns stay owned, the published snapshot keeps serving, and
// later events (a crash, a stop) are handled as usual.
func TestManagerSurvivesPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 1
		h := newHarness(t, cfg, testOptions())
		var injected atomic.Int32
		h.m.fault = func(ev any) {
			if _, ok := ev.(evControl); ok && injected.Add(1) == 1 {
				panic("injected fault")
			}
		}
		before := lifecyclePanics.Get()
		h.run()
		h.expect(1, 0, 0)
		a := h.proc(0)

		a.sendBg(1) // panics while handled
		time.Sleep(time.Second)
		h.settle()
		if injected.Load() != 1 || h.m.panics != 1 || lifecyclePanics.Get() != before+1 {
			t.Fatalf("injected %d, manager counted %d panics, metric grew by %d; want 1 each",
				injected.Load(), h.m.panics, lifecyclePanics.Get()-before)
		}
		h.expect(1, 0, 0)
		if !h.published(a) {
			t.Fatal("the worker left the snapshot after the panic")
		}
		w := h.acquire() // still routable
		h.release(w)

		a.sendBg(0) // the next event is handled normally
		if a.p.bgTasks != 0 {
			t.Fatalf("bgTasks %d after the restarted loop handled bg 0", a.p.bgTasks)
		}
		a.crash()
		h.expect(1, 0, 0)
		if h.started() != 2 || !h.published(h.proc(1)) {
			t.Fatal("a crash after the panic was not handled (no replacement for minWorkers)")
		}
		h.stop()
	})
}
