package lifecycle

import (
	"testing"
	"testing/synctest"
	"time"
)

// Regression: a stop (SIGTERM) while the function was retiring (a reload
// replaced it, its worker still draining a request) replaced the retire's
// reply channel with its own: retire never returned, and the goroutine
// waiting on it leaked. Every stop request is answered when the function
// has stopped, and the later shutdown still terminates the drain at once.
func TestStopWhileRetiringAnswersBoth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 1
		cfg.Timeout = 150 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.run()
		a := h.proc(0)
		w := h.acquire() // keeps a draining
		retired, stopped := make(chan struct{}), make(chan struct{})
		go func() { h.m.retire(); close(retired) }()
		h.settle()
		h.expect(0, 0, 1)
		go func() { h.m.stop(); close(stopped) }()
		h.settle()
		if a.terms.Load() != 1 {
			t.Fatalf("the shutdown did not terminate the draining worker (%d SIGTERMs)", a.terms.Load())
		}
		for name, ch := range map[string]chan struct{}{"retire": retired, "stop": stopped} {
			select {
			case <-ch:
			default:
				t.Fatalf("%s did not return after the function stopped; status %+v", name, h.status())
			}
		}
		h.release(w)
	})
}
