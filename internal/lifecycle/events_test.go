package lifecycle

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// Item 10 of issue 15: a planned stop tells user code why (beforeunload
// with the reason) and, once the worker has answered everything, drain.
func TestPlannedStopSendsBeforeunloadThenDrain(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*harness)
		want []string
	}{
		{"idle", func(h *harness) { h.m.cfg.IdleTimeout = 10 * time.Second }, []string{"beforeunload idle", "drain"}},
		{"max duration", func(h *harness) { h.m.cfg.WorkerMaxDuration = 10 * time.Second }, []string{"beforeunload wall_clock", "drain"}},
		{"cpu soft limit", func(h *harness) {
			h.m.cfg.CPUTimeSoftLimit = time.Second
			h.m.s.opts.ResourceCheckInterval = time.Second
			h.m.sample = func(p *process) (procUsage, error) {
				return procUsage{cpu: time.Since(h.begin)}, nil // one CPU second per second
			}
		}, []string{"beforeunload cpu", "drain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.EagerSpawn = true
				h := newHarness(t, cfg, testOptions())
				tc.cfg(h)
				h.run()
				a := h.proc(0)
				h.sleepUntil(15 * time.Second)
				if got := a.messages(); !slices.Equal(got, tc.want) {
					t.Fatalf("control messages %q, want %q", got, tc.want)
				}
				if a.terms.Load() != 1 {
					t.Fatalf("%d SIGTERMs, want 1", a.terms.Load())
				}
				h.stop()
			})
		})
	}
}

func TestKilledWorkerGetsNoLifecycleEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, usage := resourceHarness(t, nil)
		h.run()
		a := h.proc(0)
		usage.Store(&procUsage{anon: 1 << 30})
		h.sleepUntil(time.Second)
		if a.kills.Load() != 1 || len(a.messages()) != 0 {
			t.Fatalf("%d kills, messages %q; want a kill and no events", a.kills.Load(), a.messages())
		}
		h.stop()
	})
}
