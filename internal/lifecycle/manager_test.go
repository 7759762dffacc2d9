package lifecycle

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/upstream"
)

const ms = time.Millisecond

// --- idle ---------------------------------------------------------------

func TestIdleStopsWorkerAfterIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.EagerSpawn = true
		cfg.IdleTimeout = 10 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.configure = func(f *fakeProc) { f.ignoreTerm.Store(true) } // exits when the test says
		h.run()
		h.expect(1, 0, 0)
		a := h.proc(0)

		h.sleepUntil(10*time.Second - ms)
		h.expect(1, 0, 0)
		if a.terms.Load() != 0 || a.pings.Load() != 0 {
			t.Fatalf("before idleTimeout: %d SIGTERMs, %d pings; want none", a.terms.Load(), a.pings.Load())
		}

		h.sleepUntil(10 * time.Second)
		if a.pings.Load() != 1 {
			t.Fatalf("idle stop confirmed with %d pings, want 1", a.pings.Load())
		}
		if a.terms.Load() != 1 {
			t.Fatalf("at idleTimeout: %d SIGTERMs, want the worker terminated", a.terms.Load())
		}
		h.expect(0, 0, 1) // out of the snapshot, not exited yet
		if st := h.status(); st.LastStopReason != "" {
			t.Fatalf("lastStopReason %q before the worker exited", st.LastStopReason)
		}
		h.sleepUntil(11 * time.Second)
		a.exit()
		h.settle()
		h.expect(0, 0, 0)
		if st := h.status(); st.LastStopReason != ReasonIdle || st.Restarts != 0 {
			t.Fatalf("status %+v, want lastStopReason %q and no restarts", st, ReasonIdle)
		}
		if h.started() != 1 {
			t.Fatalf("%d workers started, want 1 (no respawn with minWorkers 0)", h.started())
		}
		h.stop()
	})
}

func TestIdleTimeoutCountsFromLastRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.EagerSpawn = true
		cfg.IdleTimeout = 10 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.run()
		a := h.proc(0)

		// A request from 5s to 30s: in flight, the worker is never idle.
		h.sleepUntil(5 * time.Second)
		w := h.acquire()
		h.sleepUntil(29 * time.Second)
		if a.terms.Load() != 0 {
			t.Fatal("a worker with a request in flight was stopped")
		}
		h.sleepUntil(30 * time.Second)
		h.release(w)

		h.sleepUntil(40*time.Second - ms)
		h.expect(1, 0, 0)
		if a.terms.Load() != 0 {
			t.Fatalf("stopped at %v, before idleTimeout after its last request", h.elapsed())
		}
		h.sleepUntil(40 * time.Second)
		h.expect(0, 0, 0)
		if !a.hasExited() || h.status().LastStopReason != ReasonIdle {
			t.Fatalf("not stopped for idleness at 40s: %+v", h.status())
		}
		h.stop()
	})
}

func TestIdleNeverStopsBelowMinWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 2
		cfg.IdleTimeout = 10 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.run()
		h.expect(2, 0, 0)

		// Load both, then a third request finds them busy and scales up.
		h.bootDelay = 100 * ms
		ws := []*upstream.Worker{h.acquire(), h.acquire(), h.acquire()}
		h.settle()
		h.expect(3, 0, 0)
		h.sleepUntil(time.Second)
		for _, w := range ws {
			h.release(w)
		}

		h.sleepUntil(11*time.Second - ms)
		h.expect(3, 0, 0)
		h.sleepUntil(11 * time.Second)
		h.expect(2, 0, 0)
		h.sleepUntil(10 * time.Minute)
		h.expect(2, 0, 0)
		stopped := 0
		for i := range h.started() {
			stopped += int(h.proc(i).terms.Load())
		}
		if stopped != 1 || h.started() != 3 {
			t.Fatalf("%d of %d workers stopped, want exactly 1 (minWorkers 2)", stopped, h.started())
		}
		if h.status().LastStopReason != ReasonIdle {
			t.Fatalf("lastStopReason %q, want %q", h.status().LastStopReason, ReasonIdle)
		}
		h.stop()
	})
}

// --- background tasks ---------------------------------------------------

func TestIdleStopWaitsForPendingBackgroundTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.EagerSpawn = true
		cfg.IdleTimeout = 10 * time.Second
		cfg.BackgroundTaskTimeout = 30 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.run()
		a := h.proc(0)

		h.sleepUntil(time.Second)
		a.sendBg(1)
		if st := h.status(); st.Workers[0].BackgroundTasks != 1 {
			t.Fatalf("status shows %d background tasks, want 1", st.Workers[0].BackgroundTasks)
		}
		h.sleepUntil(10 * time.Second) // idle, but its task keeps it
		h.expect(1, 0, 0)
		h.sleepUntil(30*time.Second - ms)
		h.expect(1, 0, 0)
		if a.terms.Load() != 0 {
			t.Fatalf("stopped at %v with a background task pending", h.elapsed())
		}

		// backgroundTaskTimeout after the last activity (its start, here).
		h.sleepUntil(30 * time.Second)
		h.expect(0, 0, 0)
		if !a.hasExited() || h.status().LastStopReason != ReasonBackground {
			t.Fatalf("not stopped at backgroundTaskTimeout: %+v", h.status())
		}
		h.stop()
	})
}

func TestIdleStopAfterBackgroundTaskEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.EagerSpawn = true
		cfg.IdleTimeout = 10 * time.Second
		cfg.BackgroundTaskTimeout = 30 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.run()
		a := h.proc(0)

		h.sleepUntil(time.Second)
		a.sendBg(1)
		h.sleepUntil(15 * time.Second)
		h.expect(1, 0, 0)
		a.sendBg(0)
		h.expect(0, 0, 0)
		if !a.hasExited() || h.status().LastStopReason != ReasonIdle {
			t.Fatalf("not stopped once its background task ended: %+v", h.status())
		}
		h.stop()
	})
}

// The idle stop is confirmed by a pong, which is ordered after any "bg"
// line: a task the worker reports only in the pong keeps it alive.
func TestIdleStopConfirmedByPong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.EagerSpawn = true
		cfg.IdleTimeout = 10 * time.Second
		cfg.BackgroundTaskTimeout = 30 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.run()
		a := h.proc(0)
		a.tasks.Store(1) // no "bg" line was read yet

		h.sleepUntil(10 * time.Second)
		if a.pings.Load() != 1 {
			t.Fatalf("%d pings at idleTimeout, want 1 confirmation ping", a.pings.Load())
		}
		h.expect(1, 0, 0)
		if a.terms.Load() != 0 || h.status().Workers[0].BackgroundTasks != 1 {
			t.Fatalf("stopped although the pong reported a task: %+v", h.status())
		}

		h.sleepUntil(20 * time.Second)
		a.sendBg(0)
		if a.pings.Load() != 2 {
			t.Fatalf("%d pings, want a second confirmation after bg 0", a.pings.Load())
		}
		h.expect(0, 0, 0)
		if h.status().LastStopReason != ReasonIdle {
			t.Fatalf("lastStopReason %q, want %q", h.status().LastStopReason, ReasonIdle)
		}
		h.stop()
	})
}

func TestBackgroundTaskDoesNotKeepAliveWhenDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.EagerSpawn = true
		cfg.IdleTimeout = 10 * time.Second
		cfg.BackgroundTaskKeepsAlive = false
		h := newHarness(t, cfg, testOptions())
		h.run()
		a := h.proc(0)

		h.sleepUntil(time.Second)
		a.sendBg(1)
		h.sleepUntil(10*time.Second - ms)
		h.expect(1, 0, 0)
		h.sleepUntil(10 * time.Second)
		h.expect(0, 0, 0)
		if !a.hasExited() || h.status().LastStopReason != ReasonBackground {
			t.Fatalf("not stopped at idleTimeout: %+v", h.status())
		}
		h.stop()
	})
}

// Regression: while a background task kept an idle worker alive, armTimer
// re-armed for the idle deadline that had already passed, i.e. 1ms later,
// and the manager woke (and published a snapshot) 1000 times a second until
// backgroundTaskTimeout.
func TestBackgroundTaskKeepAliveDoesNotBusyWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.EagerSpawn = true
		cfg.IdleTimeout = 10 * time.Second
		cfg.BackgroundTaskTimeout = 30 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.run()
		h.sleepUntil(time.Second)
		h.proc(0).sendBg(1)
		h.sleepUntil(10*time.Second + ms)
		before := h.wakes.Load()
		h.sleepUntil(29 * time.Second)
		if n := h.wakes.Load() - before; n > 20 {
			t.Fatalf("the manager woke up %d times in 19s while a background task kept its worker alive", n)
		}
		h.sleepUntil(30 * time.Second)
		h.expect(0, 0, 0)
		h.stop()
	})
}

// Regression: the same busy wake while the idle confirmation ping waited for
// its pong; a worker that never answers (health checks off) made it last
// forever.
func TestUnansweredIdlePingDoesNotBusyWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.EagerSpawn = true
		cfg.IdleTimeout = 10 * time.Second
		cfg.HealthCheckTimeout = 2 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.configure = func(f *fakeProc) { f.mute.Store(true) }
		h.run()
		a := h.proc(0)

		h.sleepUntil(10*time.Second + ms)
		before := h.wakes.Load()
		h.sleepUntil(60 * time.Second)
		if n := h.wakes.Load() - before; n > 200 {
			t.Fatalf("the manager woke up %d times in 50s waiting for idle pongs", n)
		}
		// Unconfirmed, it is never stopped; the ping is retried after each
		// healthCheckTimeout.
		h.expect(1, 0, 0)
		if p := a.pings.Load(); p != 26 {
			t.Fatalf("%d pings by 60s, want 26 (one at 10s, then every 2s)", p)
		}
		h.stop()
	})
}

// --- workerMaxDuration --------------------------------------------------

func TestMaxDurationMakeBeforeBreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 1
		cfg.WorkerMaxDuration = 60 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.run()
		a := h.proc(0)
		h.hold.Store(true)

		h.sleepUntil(60*time.Second - ms)
		if h.held.Load() != 0 {
			t.Fatal("replacement started before workerMaxDuration")
		}
		h.sleepUntil(60 * time.Second)
		if h.held.Load() != 1 {
			t.Fatalf("%d replacements booting at workerMaxDuration, want 1", h.held.Load())
		}
		h.expect(1, 1, 0)
		if !h.published(a) || a.terms.Load() != 0 {
			t.Fatal("the old worker left the snapshot before its replacement was ready")
		}
		w := h.acquire() // a request still reaches the old worker
		if w != a.p.worker {
			t.Fatal("Acquire did not pick the old worker")
		}

		h.sleepUntil(70 * time.Second) // a slow boot: still one replacement
		if h.held.Load() != 1 || !h.published(a) {
			t.Fatalf("during the replacement's boot: %d booting, snapshot %v", h.held.Load(), h.snapshot().Workers)
		}

		h.boot(nil)
		b := h.proc(1)
		if !h.published(b) {
			t.Fatal("the replacement is not the only worker in the snapshot")
		}
		h.expect(1, 0, 1) // the old one drains its request
		if a.terms.Load() != 0 {
			t.Fatal("the old worker was terminated with a request in flight")
		}
		h.release(w)
		if a.terms.Load() != 1 || !a.hasExited() {
			t.Fatal("the drained old worker was not terminated")
		}
		h.expect(1, 0, 0)
		if st := h.status(); st.LastStopReason != ReasonMaxDuration || st.Restarts != 1 {
			t.Fatalf("status %+v, want lastStopReason %q and 1 restart", st, ReasonMaxDuration)
		}
		h.hold.Store(false)
		h.stop()
	})
}

func TestMaxDurationFailedReplacementIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 1
		cfg.WorkerMaxDuration = 60 * time.Second
		opts := testOptions()
		opts.BootTimeout = 15 * time.Second
		h := newHarness(t, cfg, opts)
		h.run()
		a := h.proc(0)
		h.hold.Store(true)

		h.sleepUntil(60 * time.Second)
		h.boot(errors.New("boom"))
		h.expect(1, 0, 0)
		if !h.published(a) || a.terms.Load() != 0 {
			t.Fatal("the old worker stopped serving after its replacement failed to boot")
		}
		if h.snapshot().BootFailures != 1 {
			t.Fatalf("BootFailures %d, want 1", h.snapshot().BootFailures)
		}
		h.release(h.acquire())

		h.sleepUntil(75*time.Second - ms)
		if h.held.Load() != 0 {
			t.Fatal("replacement retried before bootTimeout passed")
		}
		h.sleepUntil(75 * time.Second)
		if h.held.Load() != 1 {
			t.Fatal("replacement not retried bootTimeout after the failure")
		}
		h.boot(nil)
		b := h.proc(1)
		if !h.published(b) || !a.hasExited() {
			t.Fatal("the retried replacement did not take over")
		}
		h.expect(1, 0, 0)
		h.hold.Store(false)
		h.stop()
	})
}

// A recycled worker drains its requests, then stays up for its pending
// background tasks: until they end or until backgroundTaskTimeout after its
// last request.
func TestRecycledWorkerWaitsForBackgroundTasks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tasksEnd bool          // the worker reports bg 0 at stop
		stop     time.Duration // when it must get SIGTERM
	}{
		{"tasks end", true, 70 * time.Second},
		{"tasks outlive backgroundTaskTimeout", false, 80 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.MinWorkers = 1
				cfg.WorkerMaxDuration = 60 * time.Second
				cfg.BackgroundTaskTimeout = 30 * time.Second
				h := newHarness(t, cfg, testOptions())
				h.run()
				a := h.proc(0)
				w := h.acquire()
				h.sleepUntil(50 * time.Second)
				a.sendBg(1)
				h.release(w) // last activity at 50s
				h.sleepUntil(60 * time.Second)
				if !h.published(h.proc(1)) {
					t.Fatal("not replaced at workerMaxDuration")
				}
				h.expect(1, 0, 1)
				h.sleepUntil(tc.stop - ms)
				if a.terms.Load() != 0 {
					t.Fatalf("terminated at %v, before %v", h.elapsed(), tc.stop)
				}
				h.sleepUntil(tc.stop)
				if tc.tasksEnd {
					a.sendBg(0)
				}
				if a.terms.Load() != 1 || !a.hasExited() {
					t.Fatalf("not terminated at %v", tc.stop)
				}
				h.expect(1, 0, 0)
				h.stop()
			})
		})
	}
}

// Regression: if the old worker crashed while its replacement booted, the
// ready replacement "stopped" the dead worker again: it was put back in the
// stopping list, where no exit would ever remove it, so the status showed
// it draining forever and m.stop() never returned.
func TestReplacedWorkerThatCrashedIsNotLeftDraining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 1
		cfg.WorkerMaxDuration = 60 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.run()
		a := h.proc(0)
		h.hold.Store(true)

		h.sleepUntil(60 * time.Second)
		a.crash()
		h.expect(0, 1, 0) // the replacement counts towards minWorkers
		h.boot(nil)
		h.expect(1, 0, 0)
		if !h.published(h.proc(1)) {
			t.Fatal("the replacement is not published")
		}
		if st := h.status(); st.LastStopReason != ReasonCrash || st.Restarts != 1 {
			t.Fatalf("status %+v, want lastStopReason %q and 1 restart", st, ReasonCrash)
		}
		h.hold.Store(false)
		h.stop()
	})
}

// --- health checks ------------------------------------------------------

func healthConfig() (cfg config.FunctionConfig) {
	cfg = testConfig()
	cfg.MinWorkers = 1
	cfg.HealthCheckInterval = 10 * time.Second
	cfg.HealthCheckTimeout = 2 * time.Second
	cfg.HealthCheckMaxFailures = 3
	return cfg
}

func TestHealthPingsEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, healthConfig(), testOptions())
		h.run()
		a := h.proc(0)
		if a.pings.Load() != 1 {
			t.Fatalf("%d pings when ready, want 1", a.pings.Load())
		}
		h.sleepUntil(10*time.Second - ms)
		if a.pings.Load() != 1 {
			t.Fatalf("%d pings before healthCheckInterval, want 1", a.pings.Load())
		}
		h.sleepUntil(10 * time.Second)
		if a.pings.Load() != 2 {
			t.Fatalf("%d pings at healthCheckInterval, want 2", a.pings.Load())
		}
		h.sleepUntil(100 * time.Second)
		if a.pings.Load() != 11 {
			t.Fatalf("%d pings in 100s, want 11", a.pings.Load())
		}
		h.expect(1, 0, 0)
		if a.kills.Load() != 0 || a.terms.Load() != 0 || h.started() != 1 {
			t.Fatal("a healthy worker was stopped")
		}
		h.stop()
	})
}

func TestHealthUnansweredPingsKillWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, healthConfig(), testOptions())
		h.configure = func(f *fakeProc) { f.mute.Store(h.started() == 0) }
		h.run()
		a := h.proc(0)

		// Pings at 0s, 10s, 20s; each times out 2s later.
		h.sleepUntil(22*time.Second - ms)
		if a.pings.Load() != 3 || a.kills.Load() != 0 {
			t.Fatalf("at 21.999s: %d pings, %d kills; want 3 pings, no kill", a.pings.Load(), a.kills.Load())
		}
		h.expect(1, 0, 0)
		h.sleepUntil(22 * time.Second)
		if a.kills.Load() != 1 || !a.hasExited() || a.terms.Load() != 0 {
			t.Fatalf("after 3 unanswered pings: %d kills, %d SIGTERMs; want one SIGKILL", a.kills.Load(), a.terms.Load())
		}
		// Removed, and replaced to keep minWorkers.
		h.expect(1, 0, 0)
		if h.started() != 2 || !h.published(h.proc(1)) {
			t.Fatal("the killed worker was not replaced")
		}
		if st := h.status(); st.LastStopReason != ReasonHealth || st.Restarts != 1 {
			t.Fatalf("status %+v, want lastStopReason %q and 1 restart", st, ReasonHealth)
		}
		h.stop()
	})
}

func TestHealthAnsweredPingResetsFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, healthConfig(), testOptions())
		h.configure = func(f *fakeProc) { f.mute.Store(true) }
		h.run()
		a := h.proc(0)

		h.sleepUntil(15 * time.Second) // pings at 0s and 10s timed out
		a.mute.Store(false)
		h.sleepUntil(21 * time.Second) // the ping at 20s is answered
		a.mute.Store(true)
		// Three more failures are needed: pings at 30s, 40s, 50s.
		h.sleepUntil(52*time.Second - ms)
		if a.kills.Load() != 0 {
			t.Fatal("killed although an answered ping reset the failure count")
		}
		h.expect(1, 0, 0)
		h.sleepUntil(52 * time.Second)
		if a.kills.Load() != 1 {
			t.Fatal("not killed after 3 consecutive unanswered pings")
		}
		h.stop()
	})
}

// A pong that arrives after the next ping was sent answers nothing: a
// worker whose every answer is late fails its checks.
func TestHealthLatePongsDoNotCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := healthConfig()
		cfg.HealthCheckInterval = time.Second
		cfg.HealthCheckTimeout = 2 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.configure = func(f *fakeProc) {
			if h.started() == 0 {
				f.pongDelay.Store(int64(2500 * ms))
			}
		}
		h.run()
		a := h.proc(0)
		// Pings at 0s, 2s, 4s time out at 2s, 4s, 6s; the pong for each
		// arrives 0.5s after the next ping went out.
		h.sleepUntil(6*time.Second - ms)
		if a.kills.Load() != 0 {
			t.Fatal("killed before 3 pings timed out")
		}
		h.sleepUntil(6 * time.Second)
		if a.kills.Load() != 1 {
			t.Fatalf("not killed after 3 timed-out pings (%d pings)", a.pings.Load())
		}
		h.stop()
	})
}

// --- crash loop ---------------------------------------------------------

func TestCrashLoopCoolsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 1
		opts := testOptions()
		opts.CrashLoopThreshold = 2
		opts.CrashLoopWindow = 30 * time.Second
		opts.CrashLoopCooldown = 60 * time.Second
		h := newHarness(t, cfg, opts)
		h.run()

		for i := range 2 {
			h.sleepUntil(time.Duration(i+1) * time.Second)
			h.proc(i).crash()
			h.expect(1, 0, 0) // respawned at once
			if !h.snapshot().CrashLoopUntil.IsZero() || h.status().CrashLoopUntil != nil {
				t.Fatalf("crash loop after %d crashes, threshold 2", i+1)
			}
		}
		h.sleepUntil(3 * time.Second)
		h.proc(2).crash()
		until := h.begin.Add(63 * time.Second)
		if got := h.snapshot().CrashLoopUntil; !got.Equal(until) {
			t.Fatalf("snapshot CrashLoopUntil %v, want %v", got, until)
		}
		st := h.status()
		if st.CrashLoopUntil == nil || !st.CrashLoopUntil.Equal(until) || st.LastStopReason != ReasonCrash || st.Restarts != 3 {
			t.Fatalf("status %+v, want crashLoopUntil %v, lastStopReason crash, 3 restarts", st, until)
		}
		h.expect(0, 0, 0)
		if _, err := h.m.pool.Acquire(time.Now().Add(time.Second)); !errors.Is(err, upstream.ErrCrashLoop) {
			t.Fatalf("Acquire during the cooldown: %v, want ErrCrashLoop", err)
		}

		h.sleepUntil(63*time.Second - ms)
		if h.started() != 3 {
			t.Fatalf("%d workers started during the cooldown, want none", h.started()-3)
		}
		h.expect(0, 0, 0)
		h.sleepUntil(63 * time.Second)
		h.expect(1, 0, 0)
		if h.started() != 4 || !h.snapshot().CrashLoopUntil.IsZero() || h.status().CrashLoopUntil != nil {
			t.Fatal("minWorkers not restored after the cooldown")
		}
		h.release(h.acquire())
		h.stop()
	})
}

func TestCrashesOutsideWindowDoNotCrashLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 1
		opts := testOptions()
		opts.CrashLoopThreshold = 2
		opts.CrashLoopWindow = 30 * time.Second
		h := newHarness(t, cfg, opts)
		h.run()
		// Never more than 2 crashes less than 30s apart (1s and 31s are
		// exactly 30s apart: the first has left the window).
		for i, at := range []time.Duration{time.Second, 20 * time.Second, 31 * time.Second, 51 * time.Second} {
			h.sleepUntil(at)
			h.proc(i).crash()
			h.expect(1, 0, 0)
			if !h.snapshot().CrashLoopUntil.IsZero() {
				t.Fatalf("crash loop at %v with at most 2 crashes in any 30s", at)
			}
		}
		if h.started() != 5 || h.status().Restarts != 4 {
			t.Fatalf("%d started, %d restarts; want 5 and 4", h.started(), h.status().Restarts)
		}
		h.stop()
	})
}

// --- minWorkers and eagerSpawn ------------------------------------------

func TestMinWorkersRestoredAfterCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 2
		h := newHarness(t, cfg, testOptions())
		h.run()
		h.expect(2, 0, 0)
		a, b := h.proc(0), h.proc(1)

		h.sleepUntil(5 * time.Second)
		a.crash()
		h.expect(2, 0, 0)
		if h.started() != 3 || !h.published(b, h.proc(2)) {
			t.Fatalf("%d started, snapshot %v: the crashed worker was not replaced", h.started(), h.snapshot().Workers)
		}
		if st := h.status(); st.LastStopReason != ReasonCrash || st.Restarts != 1 {
			t.Fatalf("status %+v, want lastStopReason crash and 1 restart", st)
		}
		h.stop()
	})
}

func TestEagerSpawnStartsWorkersAtRunStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		eager bool
		min   int
		want  int
	}{
		{"lazy, minWorkers 0", false, 0, 0},
		{"lazy, minWorkers 2", false, 2, 2},
		{"eager, minWorkers 0", true, 0, 1},
		{"eager, minWorkers 1", true, 1, 1},
		{"eager, minWorkers 3", true, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.EagerSpawn = tc.eager
				cfg.MinWorkers = tc.min
				h := newHarness(t, cfg, testOptions())
				h.hold.Store(true)
				h.run()
				if int(h.held.Load()) != tc.want {
					t.Fatalf("%d workers starting at run start, want %d", h.held.Load(), tc.want)
				}
				h.expect(0, tc.want, 0)
				h.hold.Store(false)
				for range tc.want {
					h.boot(nil)
				}
				h.expect(tc.want, 0, 0)
				h.sleepUntil(time.Hour)
				if h.started() != tc.want {
					t.Fatalf("%d workers started, want %d", h.started(), tc.want)
				}
				h.stop()
			})
		})
	}
}

// --- scaling ------------------------------------------------------------

// acquireAsync runs Acquire as a waiting request would.
func (h *harness) acquireAsync() <-chan acquired {
	c := make(chan acquired, 1)
	go func() {
		w, err := h.m.pool.Acquire(time.Now().Add(time.Minute))
		c <- acquired{w, err}
	}()
	return c
}

type acquired struct {
	w   *upstream.Worker
	err error
}

func TestScaleUpOnNudgeUpToMaxWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxWorkers = 3
		h := newHarness(t, cfg, testOptions())
		h.bootDelay = 100 * ms
		h.run()
		h.expect(0, 0, 0)

		// Every request finds the workers busy and nudges: one more worker
		// each time, and the request waits for it.
		var ws []*upstream.Worker
		for want := 1; want <= 3; want++ {
			w := h.acquire()
			h.settle()
			h.expect(want, 0, 0)
			if h.started() != want || w != h.proc(want-1).p.worker {
				t.Fatalf("request %d: %d started; want it served by the new worker", want, h.started())
			}
			ws = append(ws, w)
		}
		// At maxWorkers, requests share the workers and start none.
		for range 20 {
			ws = append(ws, h.acquire())
			h.settle()
		}
		h.sleepUntil(time.Second)
		h.expect(3, 0, 0)
		if h.started() != 3 {
			t.Fatalf("%d workers started, want maxWorkers 3", h.started())
		}
		for _, w := range ws {
			h.release(w)
		}
		h.stop()
	})
}

// Regression: while a worker booted, every snapshot the manager published
// woke the waiting requests, whose nudges made it loop and publish again: a
// busy loop for the whole boot, which also left a stale nudge behind that
// started one worker too many once the first was ready.
func TestScaleStartsOneWorkerAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 1
		cfg.MaxWorkers = 4
		h := newHarness(t, cfg, testOptions())
		h.run()
		first := h.acquire()
		h.hold.Store(true)

		var waiting []<-chan acquired
		for range 5 {
			waiting = append(waiting, h.acquireAsync())
		}
		h.settle()
		for want := 2; want <= 4; want++ {
			if h.held.Load() != 1 {
				t.Fatalf("%d workers booting with %d running, want 1", h.held.Load(), want-1)
			}
			h.expect(want-1, 1, 0)
			h.boot(nil)
		}
		h.expect(4, 0, 0)
		if h.held.Load() != 0 || h.started() != 4 {
			t.Fatalf("%d started and %d booting at maxWorkers 4", h.started(), h.held.Load())
		}
		ws := []*upstream.Worker{first}
		for _, c := range waiting {
			a := <-c
			if a.err != nil {
				t.Fatalf("waiting request: %v", a.err)
			}
			ws = append(ws, a.w)
		}
		for _, w := range ws {
			h.release(w)
		}
		h.hold.Store(false)
		h.stop()
	})
}

// --- shutdown -----------------------------------------------------------

func TestShutdownTerminatesAndWaitsForExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 2
		opts := testOptions()
		opts.ShutdownGrace = 10 * time.Second
		h := newHarness(t, cfg, opts)
		h.configure = func(f *fakeProc) { f.ignoreTerm.Store(true) }
		h.run()
		w := h.acquire()
		busy, stubborn := h.proc(0), h.proc(1)
		if w != busy.p.worker {
			busy, stubborn = stubborn, busy
		}

		done := make(chan struct{})
		go func() {
			h.m.stop()
			close(done)
		}()
		h.settle()
		if s := h.snapshot(); !s.Closed || len(s.Workers) != 0 {
			t.Fatalf("snapshot after stop: closed %v, %d workers", s.Closed, len(s.Workers))
		}
		if _, err := h.m.pool.Acquire(time.Now().Add(time.Second)); !errors.Is(err, upstream.ErrClosed) {
			t.Fatalf("Acquire while stopping: %v, want ErrClosed", err)
		}
		// The server gave requests their grace before: SIGTERM at once.
		if busy.terms.Load() != 1 || stubborn.terms.Load() != 1 {
			t.Fatalf("SIGTERMs at stop: %d and %d, want 1 each", busy.terms.Load(), stubborn.terms.Load())
		}
		h.expect(0, 0, 2)

		// The busy one finishes its request and exits by itself.
		h.sleepUntil(3 * time.Second)
		h.release(w)
		busy.exit()
		h.settle()
		h.expect(0, 0, 1)

		h.sleepUntil(10*time.Second - ms)
		select {
		case <-done:
			t.Fatal("stop returned before every worker exited")
		default:
		}
		if stubborn.kills.Load() != 0 {
			t.Fatal("killed before the shutdown grace")
		}
		h.sleepUntil(10 * time.Second)
		if stubborn.kills.Load() != 1 || busy.kills.Load() != 0 {
			t.Fatalf("kills %d and %d; want only the worker ignoring SIGTERM killed after the shutdown grace", busy.kills.Load(), stubborn.kills.Load())
		}
		select {
		case <-done:
		default:
			t.Fatal("stop did not return once every worker exited")
		}
		h.expect(0, 0, 0)
		if h.status().LastStopReason != ReasonShutdown {
			t.Fatalf("lastStopReason %q, want %q", h.status().LastStopReason, ReasonShutdown)
		}
	})
}

// Regression: a worker already draining (here, replaced at
// workerMaxDuration) with a request in flight was left to drain for up to
// the function's timeout: stop() took that long instead of terminating it
// at once like the others.
func TestShutdownTerminatesWorkerAlreadyDraining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 1
		cfg.WorkerMaxDuration = 60 * time.Second
		cfg.Timeout = 150 * time.Second
		h := newHarness(t, cfg, testOptions())
		h.run()
		a := h.proc(0)
		w := h.acquire()
		h.sleepUntil(60 * time.Second)
		h.expect(1, 0, 1) // a drains its request, its replacement serves
		if a.terms.Load() != 0 {
			t.Fatal("terminated with a request in flight")
		}
		h.sleepUntil(61 * time.Second)
		h.stop()
		if a.terms.Load() != 1 || h.proc(1).terms.Load() != 1 {
			t.Fatal("not every worker got SIGTERM at stop")
		}
		h.release(w)
	})
}

func TestShutdownWaitsForStartingWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testConfig(), testOptions())
		h.hold.Store(true)
		h.run()
		waiter := h.acquireAsync()
		h.settle()
		h.expect(0, 1, 0)

		done := make(chan struct{})
		go func() {
			h.m.stop()
			close(done)
		}()
		h.settle()
		if a := <-waiter; !errors.Is(a.err, upstream.ErrClosed) {
			t.Fatalf("waiting request got %v, want ErrClosed", a.err)
		}
		select {
		case <-done:
			t.Fatal("stop returned while a worker was still starting")
		default:
		}
		h.boot(nil)
		a := h.proc(0)
		if a.terms.Load() != 1 || !a.hasExited() {
			t.Fatal("a worker ready after stop was not terminated")
		}
		<-done
		if len(h.snapshot().Workers) != 0 {
			t.Fatal("a worker ready after stop was published")
		}
	})
}

func TestFailedBootBacksOffBeforeMinWorkersRespawn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MinWorkers = 1
		opts := testOptions()
		opts.BootRetryBackoff = 2 * time.Second
		h := newHarness(t, cfg, opts)
		h.hold.Store(true)
		h.run()
		h.boot(errors.New("syntax error"))
		if h.held.Load() != 0 {
			t.Fatal("respawned at once after a failed boot")
		}
		h.sleepUntil(1900 * time.Millisecond)
		if h.held.Load() != 0 {
			t.Fatal("respawned before the backoff ended")
		}
		h.sleepUntil(2100 * time.Millisecond)
		if h.held.Load() != 1 {
			t.Fatalf("%d boots waiting after the backoff, want 1", h.held.Load())
		}
		h.boot(nil)
		h.expect(1, 0, 0)
		h.stop()
	})
}
