package lifecycle

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"edgeway.dev/edgeway/internal/upstream"
)

// Item 14 of issue 15: with --max-workers-total reached, a function that
// needs a worker gets one by stopping the least recently used idle worker
// of another function; busy workers and minWorkers are never taken.
func TestBudgetStopsLeastRecentlyUsedIdleWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &Budget{max: 2, members: map[*Manager]struct{}{}}
		mk := func() *harness {
			cfg := testConfig()
			cfg.MaxWorkers = 1
			h := newHarness(t, cfg, testOptions())
			h.m.s.budget = b
			h.bootDelay = 100 * ms
			return h
		}
		older, newer, third := mk(), mk(), mk()
		older.run()
		newer.run()
		third.run()

		w := older.acquire()
		older.release(w)
		time.Sleep(time.Second)
		w = newer.acquire()
		newer.release(w)
		older.expect(1, 0, 0)
		newer.expect(1, 0, 0)
		if b.used != 2 {
			t.Fatalf("budget used %d, want 2", b.used)
		}

		// The third function needs a worker: the older idle one goes.
		got := third.acquireAsync()
		third.settle()
		older.settle()
		if older.proc(0).terms.Load() != 1 {
			t.Fatal("the least recently used idle worker was not stopped")
		}
		if newer.proc(0).terms.Load() != 0 {
			t.Fatal("the more recently used worker was stopped")
		}
		time.Sleep(time.Second)
		third.settle()
		r := <-got
		if r.err != nil || r.w != third.proc(0).p.worker {
			t.Fatalf("third function's request: %v", r.err)
		}
		third.release(r.w)
		older.expect(0, 0, 0)
		third.expect(1, 0, 0)
		if b.used != 2 {
			t.Fatalf("budget used %d, want 2", b.used)
		}

		// With every worker busy nothing is stopped, and nothing will free
		// a slot until a request ends somewhere: a function without a
		// worker refuses at once (503 OVERLOADED) rather than holding the
		// request to its deadline.
		busy := third.acquire()
		held := newer.acquire()
		refused := older.acquireAsync()
		older.settle()
		if newer.proc(0).terms.Load() != 0 || third.proc(0).terms.Load() != 0 {
			t.Fatal("a busy worker was stopped for the budget")
		}
		select {
		case r := <-refused:
			if !errors.Is(r.err, upstream.ErrNoWorkerSlot) || !errors.Is(r.err, upstream.ErrOverloaded) {
				t.Fatalf("request with the budget spent and every worker busy: %v, want ErrNoWorkerSlot", r.err)
			}
		default:
			t.Fatal("a request with the budget spent and every worker busy was held")
		}
		// A request ends, its worker is now the idle one. The function's
		// view is as of its last request (the budget is not told when a
		// request ends anywhere): the next request is refused as before,
		// but asks again, and its manager makes room; the one after it
		// waits for the new worker.
		newer.release(held)
		<-older.acquireAsync()
		older.settle()
		waiting := older.acquireAsync()
		time.Sleep(time.Second)
		older.settle()
		if newer.proc(0).terms.Load() != 1 {
			t.Fatal("the worker that became idle was not stopped for the waiting function")
		}
		if r := <-waiting; r.err != nil {
			t.Fatalf("waiting request: %v", r.err)
		}
		third.release(busy)
		older.stop()
		newer.stop()
		third.stop()
		if b.used != 0 {
			t.Fatalf("budget used %d after every worker exited, want 0", b.used)
		}
	})
}

// A worker booting elsewhere will serve and then be idle, so the budget is
// not blocked: a function waiting for a slot is not refused at once. Its
// requests wait as in the queue, bounded by the queue timeout (they were
// held to their whole deadline, 504 TIMEOUT, before).
func TestBudgetWaitIsBoundedByTheQueueTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &Budget{max: 1, members: map[*Manager]struct{}{}}
		mk := func() *harness {
			cfg := testConfig()
			cfg.QueueTimeout = 2 * time.Second
			cfg.Timeout = time.Minute
			h := newHarness(t, cfg, testOptions())
			h.m.s.budget = b
			return h
		}
		booting, waiting := mk(), mk()
		booting.hold.Store(true)
		booting.run()
		waiting.run()
		first := booting.acquireAsync()
		booting.settle()
		if booting.held.Load() != 1 {
			t.Fatal("the first function's boot did not start")
		}
		got := waiting.acquireAsync()
		waiting.settle()
		select {
		case r := <-got:
			t.Fatalf("refused while a worker boots elsewhere: %v", r.err)
		default:
		}
		if s := waiting.snapshot(); !s.BudgetWait || s.NoWorkerSlot {
			t.Fatalf("snapshot BudgetWait %v NoWorkerSlot %v, want waiting, not blocked", s.BudgetWait, s.NoWorkerSlot)
		}
		time.Sleep(2 * time.Second)
		waiting.settle()
		select {
		case r := <-got:
			if !errors.Is(r.err, upstream.ErrOverloaded) || errors.Is(r.err, upstream.ErrNoWorkerSlot) {
				t.Fatalf("after the queue timeout: %v, want ErrOverloaded", r.err)
			}
		default:
			t.Fatal("the request waited past the queue timeout")
		}
		booting.boot(nil)
		booting.release((<-first).w)
	})
}
