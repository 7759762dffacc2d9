package lifecycle

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"edgeway.dev/edgeway/internal/upstream"
)

// TestConcurrentUse runs the manager with every timer on while requests,
// status readers, crashes and background-task reports come from other
// goroutines, then stops it. Run with -race (make test runs go test -race
// on this package) it checks that the manager's state is only touched by its
// goroutine and that what others read (snapshots, status, worker counters)
// is safe to share; without -race it still checks the invariants below.
func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 1
		cfg.MaxWorkers = 4
		cfg.MaxConcurrency = 2
		cfg.MaxQueue = 50
		cfg.QueueTimeout = time.Second
		cfg.IdleTimeout = 300 * ms
		cfg.WorkerMaxDuration = 2 * time.Second
		cfg.HealthCheckInterval = 200 * ms
		cfg.HealthCheckTimeout = 100 * ms
		cfg.BackgroundTaskTimeout = 500 * ms
		opts := testOptions()
		opts.CrashLoopThreshold = 3
		opts.CrashLoopWindow = time.Second
		opts.CrashLoopCooldown = 500 * ms
		opts.ShutdownGrace = 200 * ms
		h := newHarness(t, cfg, opts)
		h.bootDelay = 20 * ms
		h.configure = func(f *fakeProc) {
			if f.p.id%5 == 0 {
				f.pongDelay.Store(int64(150 * ms)) // fails its health checks
			}
		}
		h.run()

		const runFor = 10 * time.Second
		end := time.Now().Add(runFor)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(i), 1))
				for time.Now().Before(end) {
					w, err := h.m.pool.Acquire(time.Now().Add(time.Second))
					if err == nil {
						time.Sleep(time.Duration(r.IntN(50)) * ms)
						if err := giveBack(w); !errors.Is(err, upstream.ErrDial) {
							t.Errorf("Proxy to a fake worker: %v, want ErrDial", err)
						}
					}
					time.Sleep(time.Duration(r.IntN(100)) * ms)
				}
			})
		}
		wg.Go(func() { // status readers, as /health
			for time.Now().Before(end) {
				st := h.status()
				if st.Running > cfg.MaxWorkers {
					t.Errorf("%d workers running, maxWorkers %d", st.Running, cfg.MaxWorkers)
				}
				for _, w := range st.Workers {
					if w.InFlight < 0 {
						t.Errorf("worker %d: %d in flight", w.ID, w.InFlight)
					}
				}
				time.Sleep(7 * ms)
			}
		})
		wg.Go(func() { // crashes and background tasks
			r := rand.New(rand.NewPCG(99, 1))
			for time.Now().Before(end) {
				time.Sleep(time.Duration(200+r.IntN(400)) * ms)
				all := h.all()
				f := all[r.IntN(len(all))]
				if f.hasExited() {
					continue
				}
				if r.IntN(2) == 0 {
					f.exit()
				} else {
					f.tasks.Store(int32(r.IntN(2)))
					go fmtBg(f)
				}
			}
		})
		wg.Wait()
		h.stop()
		for _, f := range h.all() {
			if !f.hasExited() {
				t.Errorf("worker %d still running after stop", f.p.id)
			}
		}
		t.Logf("%d workers started, %d restarts, last stop %q", h.started(), h.status().Restarts, h.status().LastStopReason)
		if h.started() < 5 {
			t.Errorf("only %d workers started in %v of churn", h.started(), runFor)
		}
		if st := h.status(); st.Running != 0 || st.Starting != 0 || st.Draining != 0 {
			t.Errorf("status after stop: %+v", st)
		}
	})
}

// fmtBg reports the fake's task count as a "bg" line; the write fails if
// the process exits meanwhile (the manager closes its end).
func fmtBg(f *fakeProc) {
	fmt.Fprintf(f.peer, "bg %d\n", f.tasks.Load())
}
