package lifecycle

import (
	"testing"
	"testing/synctest"
	"time"

	"edgeway.dev/edgeway/internal/upstream"
)

// TestRefillWaitsForTheFirstAnswer: after a cold start from the pool, the
// pool hears "assigned" (which lets the refill boot) only once the waiting
// request is answered, the worker is gone, or --prewarm-refill-wait has
// passed; with a wait of 0 at once.
func TestRefillWaitsForTheFirstAnswer(t *testing.T) {
	cases := []struct {
		name  string
		wait  time.Duration
		event func(answered, exited chan struct{}) // what ends the wait; nil: the wait itself
	}{
		{"answered", time.Second, func(a, _ chan struct{}) { close(a) }},
		{"exited", time.Second, func(_, e chan struct{}) { close(e) }},
		{"wait passed", time.Second, nil},
		{"no wait", 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &prewarm{reqs: make(chan any, 1), done: make(chan struct{})}
				answered, exited := make(chan struct{}), make(chan struct{})
				go p.assignedWhenAnswered(answered, exited, tc.wait)
				synctest.Wait()
				if tc.wait > 0 {
					if len(p.reqs) != 0 {
						t.Fatal("the pool was told before the first answer")
					}
					if tc.event != nil {
						tc.event(answered, exited)
					} else {
						time.Sleep(tc.wait)
					}
					synctest.Wait()
				}
				if len(p.reqs) != 1 {
					t.Fatal("the pool was never told")
				}
				if _, ok := (<-p.reqs).(prewarmAssigned); !ok {
					t.Fatal("the pool was told something else")
				}
			})
		})
	}
}

// TestTakeColdStartClosesAnswered: the first request a cold-started worker
// answers closes Answered, once.
func TestTakeColdStartClosesAnswered(t *testing.T) {
	answered := make(chan struct{})
	w := &upstream.Worker{Cold: upstream.ColdStart{Duration: time.Millisecond, Source: sourcePool, Answered: answered}}
	if c := w.TakeColdStart(); c.Source != sourcePool {
		t.Fatalf("first take = %+v", c)
	}
	select {
	case <-answered:
	default:
		t.Fatal("Answered is still open after the first take")
	}
	if c := w.TakeColdStart(); c.Source != "" {
		t.Fatalf("second take = %+v; want none", c)
	}
}
