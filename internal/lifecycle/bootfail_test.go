package lifecycle

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"edgeway.dev/edgeway/internal/upstream"
)

// Item 13 of issue 15: requests to a function that cannot boot start one
// boot per --boot-retry-backoff, not one per request, and failed boots
// open the crash-loop breaker.
func TestFailedBootIsNotRetriedPerRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := testOptions()
		opts.BootRetryBackoff = 2 * time.Second
		h := newHarness(t, testConfig(), opts)
		h.hold.Store(true)
		h.run()

		first := h.acquireAsync()
		h.settle()
		if h.held.Load() != 1 {
			t.Fatalf("%d boots for the first request, want 1", h.held.Load())
		}
		h.boot(errors.New("syntax error"))
		if r := <-first; !errors.Is(r.err, upstream.ErrBoot) {
			t.Fatalf("request waiting for the failed boot: %v, want ErrBoot", r.err)
		}

		// Requests arriving during the backoff are refused at once (the
		// state is known: nothing runs, nothing starts before the backoff
		// ends), and none starts a boot.
		for i := range 40 {
			if r := <-h.acquireAsync(); !errors.Is(r.err, upstream.ErrBoot) {
				t.Fatalf("request %d during the backoff: %v, want ErrBoot at once", i, r.err)
			}
		}
		if at := h.snapshot().BootRetryAt; !at.Equal(h.begin.Add(2 * time.Second)) {
			t.Fatalf("snapshot BootRetryAt %v, want the backoff's end", at)
		}
		h.settle()
		h.sleepUntil(2*time.Second - ms)
		if h.held.Load() != 0 {
			t.Fatalf("%d boots started during the backoff, want none", h.held.Load())
		}
		// After it, the next request starts one boot, which the requests
		// arriving meanwhile wait for; they get its outcome.
		h.sleepUntil(2 * time.Second)
		var waiting []<-chan acquired
		for range 10 {
			waiting = append(waiting, h.acquireAsync())
		}
		h.settle()
		if h.held.Load() != 1 {
			t.Fatalf("%d boots after the backoff, want 1", h.held.Load())
		}
		h.boot(errors.New("syntax error"))
		for i, c := range waiting {
			if r := <-c; !errors.Is(r.err, upstream.ErrBoot) {
				t.Fatalf("request %d: %v, want ErrBoot", i, r.err)
			}
		}
		if h.held.Load() != 0 {
			t.Fatal("a boot started with nobody waiting")
		}
	})
}

func TestFailedBootsOpenTheCrashLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := testOptions()
		opts.BootRetryBackoff = time.Second
		h := newHarness(t, testConfig(), opts)
		h.hold.Store(true)
		h.run()
		for i := 0; i <= opts.CrashLoopThreshold; i++ {
			c := h.acquireAsync()
			h.settle()
			if h.held.Load() != 1 {
				t.Fatalf("boot %d did not start", i)
			}
			h.boot(errors.New("syntax error"))
			r := <-c
			want := upstream.ErrBoot
			if i == opts.CrashLoopThreshold {
				want = upstream.ErrCrashLoop
			}
			if !errors.Is(r.err, want) {
				t.Fatalf("after failed boot %d: %v, want %v", i+1, r.err, want)
			}
			h.sleepUntil(h.elapsed() + time.Second)
		}
		if h.status().CrashLoopUntil == nil {
			t.Fatal("no crash loop after repeated failed boots")
		}
		if r := <-h.acquireAsync(); !errors.Is(r.err, upstream.ErrCrashLoop) {
			t.Fatalf("request during the crash loop: %v", r.err)
		}
		if h.held.Load() != 0 {
			t.Fatal("a boot started during the crash loop")
		}
	})
}
