package lifecycle

import (
	"testing"
	"testing/synctest"
	"time"
)

// Item 9 of issue 15: after a request timed out, a worker whose event loop
// answers no ping within --event-loop-timeout is replaced make-before-break;
// one that answers (slow on async work) keeps serving.
func TestTimedOutWorkerIsProbed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mute     bool // the fake bootstrap never answers: a wedged event loop
		replaced bool
	}{
		{"wedged event loop is replaced", true, true},
		{"slow but alive worker keeps serving", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.MinWorkers = 1
				cfg.MaxWorkers = 1
				opts := testOptions()
				opts.EventLoopTimeout = 2 * time.Second
				h := newHarness(t, cfg, opts)
				h.bootDelay = 500 * ms
				h.configure = func(f *fakeProc) { f.mute.Store(tc.mute && h.started() == 0) }
				h.run()
				h.sleepUntil(time.Second)
				h.expect(1, 0, 0)
				a := h.proc(0)

				h.m.send(evTimeout{a.p.worker})
				h.settle()
				if a.pings.Load() != 1 {
					t.Fatalf("%d pings after a timeout, want 1", a.pings.Load())
				}
				// A second timeout while the probe is outstanding sends no
				// second ping; once answered, the next timeout probes again.
				h.m.send(evTimeout{a.p.worker})
				h.settle()
				if want := map[bool]int32{true: 1, false: 2}[tc.mute]; a.pings.Load() != want {
					t.Fatalf("%d pings after two timeouts, want %d", a.pings.Load(), want)
				}
				h.sleepUntil(3*time.Second - ms)
				h.expect(1, 0, 0)
				h.sleepUntil(3 * time.Second)
				if !tc.replaced {
					h.expect(1, 0, 0)
					if h.started() != 1 || a.kills.Load() != 0 {
						t.Fatalf("a worker that answered was replaced: %d started, %d kills", h.started(), a.kills.Load())
					}
					h.stop()
					return
				}
				// Out of routing at once, replacement booting, old one alive
				// until the replacement is ready.
				h.expect(0, 1, 1)
				if a.kills.Load() != 0 {
					t.Fatal("the wedged worker was killed before its replacement was ready")
				}
				h.sleepUntil(3*time.Second + 500*ms)
				h.expect(1, 0, 0)
				if a.kills.Load() != 1 || !h.published(h.proc(1)) {
					t.Fatalf("after the replacement booted: %d kills, want the wedged worker killed", a.kills.Load())
				}
				if st := h.status(); st.LastStopReason != ReasonWedged || st.Restarts != 1 {
					t.Fatalf("status %+v, want lastStopReason %q and 1 restart", st, ReasonWedged)
				}
				h.stop()
			})
		})
	}
}
