package guard

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Breaker steps: Allow or Report at t0+at, with the expected answer and
// the state afterwards.
type brStep struct {
	at        time.Duration
	op        byte // 'a' Allow, 'f' Report failure, 's' Report success
	wantOK    bool
	wantRetry time.Duration
	wantState string
}

func allow(at time.Duration, ok bool, retry time.Duration, state string) brStep {
	return brStep{at: at, op: 'a', wantOK: ok, wantRetry: retry, wantState: state}
}

func fail(at time.Duration, state string) brStep {
	return brStep{at: at, op: 'f', wantState: state}
}

func succeed(at time.Duration, state string) brStep {
	return brStep{at: at, op: 's', wantState: state}
}

// repeat returns step n times.
func repeat(n int, step brStep) []brStep {
	out := make([]brStep, n)
	for i := range out {
		out[i] = step
	}
	return out
}

func steps(parts ...[]brStep) []brStep {
	var out []brStep
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func one(s brStep) []brStep { return []brStep{s} }

// trip opens a breaker with a window of n by n failures at t0+at.
func trip(n int, at time.Duration) []brStep {
	return append(repeat(n-1, fail(at, StateClosed)), fail(at, StateOpen))
}

func TestBreakerTransitions(t *testing.T) {
	t.Parallel()
	const cool = 10 * time.Second
	small := BreakerOptions{ErrorRate: 0.5, Window: 4, Cooldown: cool}
	tests := []struct {
		name  string
		opts  BreakerOptions
		steps []brStep
	}{
		{"no opening before a full window", small, steps(
			repeat(3, fail(0, StateClosed)),
			one(allow(0, true, 0, StateClosed)),
			one(fail(0, StateOpen)),
		)},
		{"MinCalls opens earlier", BreakerOptions{ErrorRate: 0.5, Window: 4, MinCalls: 2, Cooldown: cool}, steps(
			one(fail(0, StateClosed)),
			one(fail(0, StateOpen)),
		)},
		{"below the error rate stays closed", small, steps(
			one(fail(0, StateClosed)),
			repeat(3, succeed(0, StateClosed)),
			one(succeed(0, StateClosed)), // window S S S S
			one(fail(0, StateClosed)),    // S S S F
			one(fail(0, StateOpen)),      // S S F F: 2/4 ≥ 0.5
		)},
		{"the window slides", small, steps(
			repeat(3, fail(0, StateClosed)),
			one(succeed(0, StateOpen)), // F F F S: 3/4
		)},
		{"old failures slide out", small, steps(
			one(fail(0, StateClosed)),
			repeat(3, succeed(0, StateClosed)),
			repeat(4, succeed(0, StateClosed)),
			one(fail(0, StateClosed)), // S S S F: the first F is gone
		)},
		{"open refuses until the cooldown ends", small, steps(
			trip(4, time.Second),
			one(allow(time.Second, false, cool, StateOpen)),
			one(allow(4*time.Second, false, 7*time.Second, StateOpen)),
			one(allow(time.Second+cool-1, false, 1, StateOpen)),
		)},
		{"reports while open are ignored", small, steps(
			trip(4, 0),
			repeat(10, succeed(time.Second, StateOpen)),
			one(allow(2*time.Second, false, cool-2*time.Second, StateOpen)),
		)},
		{"one probe after the cooldown, others wait for it", small, steps(
			trip(4, 0),
			one(allow(cool, true, 0, StateHalfOpen)),
			one(allow(cool, false, cool, StateHalfOpen)),
			one(allow(cool+3*time.Second, false, cool-3*time.Second, StateHalfOpen)),
		)},
		{"probe success closes with an empty window", small, steps(
			trip(4, 0),
			one(allow(cool, true, 0, StateHalfOpen)),
			one(succeed(cool+time.Second, StateClosed)),
			one(allow(cool+time.Second, true, 0, StateClosed)),
			repeat(3, fail(cool+time.Second, StateClosed)),
			one(fail(cool+time.Second, StateOpen)),
		)},
		{"probe failure reopens for another cooldown", small, steps(
			trip(4, 0),
			one(allow(cool, true, 0, StateHalfOpen)),
			one(fail(cool+2*time.Second, StateOpen)),
			one(allow(cool+2*time.Second, false, cool, StateOpen)),
			one(allow(2*cool+2*time.Second, true, 0, StateHalfOpen)),
		)},
		{"a lost probe is replaced after ProbeTimeout", BreakerOptions{ErrorRate: 0.5, Window: 4, Cooldown: cool, ProbeTimeout: time.Second}, steps(
			trip(4, 0),
			one(allow(cool, true, 0, StateHalfOpen)),
			one(allow(cool+500*time.Millisecond, false, 500*time.Millisecond, StateHalfOpen)),
			one(allow(cool+time.Second, true, 0, StateHalfOpen)),
			one(succeed(cool+time.Second, StateClosed)),
		)},
		{"defaults: 20 calls, 50%, 30s", BreakerOptions{}, steps(
			repeat(10, succeed(0, StateClosed)),
			repeat(9, fail(0, StateClosed)),
			one(fail(0, StateOpen)),
			one(allow(0, false, DefaultCooldown, StateOpen)),
			one(allow(DefaultCooldown, true, 0, StateHalfOpen)),
		)},
		{"error rate 1 needs every call to fail", BreakerOptions{ErrorRate: 1, Window: 3, Cooldown: cool}, steps(
			repeat(2, fail(0, StateClosed)),
			one(succeed(0, StateClosed)),
			repeat(2, fail(0, StateClosed)),
			one(fail(0, StateOpen)),
		)},
		{"error rate above 1 never opens", BreakerOptions{ErrorRate: 1.5, Window: 2, Cooldown: cool}, steps(
			repeat(10, fail(0, StateClosed)),
		)},
		{"MinCalls above Window is clamped", BreakerOptions{Window: 2, MinCalls: 5, Cooldown: cool}, steps(
			one(fail(0, StateClosed)),
			one(fail(0, StateOpen)),
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := NewBreaker(tt.opts)
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				switch s.op {
				case 'a':
					ok, retry := b.Allow(now)
					if ok != s.wantOK || retry != s.wantRetry {
						t.Fatalf("step %d: Allow at %v = %v, %v; want %v, %v", i, s.at, ok, retry, s.wantOK, s.wantRetry)
					}
				case 'f', 's':
					b.Report(s.op == 'f', now)
				}
				if got := b.State(); got != s.wantState {
					t.Fatalf("step %d (%c at %v): state %q, want %q", i, s.op, s.at, got, s.wantState)
				}
			}
		})
	}
}

func TestBreakerSingleProbeUnderContention(t *testing.T) {
	t.Parallel()
	const (
		goroutines = 16
		cool       = time.Second
	)
	b := NewBreaker(BreakerOptions{Window: 1, Cooldown: cool})
	b.Report(true, t0)
	for round := range 3 {
		now := t0.Add(time.Duration(2*round+1) * cool)
		var admitted atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range goroutines {
			wg.Go(func() {
				<-start
				if ok, _ := b.Allow(now); ok {
					admitted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := admitted.Load(); got != 1 {
			t.Fatalf("round %d: %d callers admitted in half-open, want exactly 1", round, got)
		}
		b.Report(true, now) // the probe fails: open again
	}
}

func TestBreakerConcurrentTraffic(t *testing.T) {
	t.Parallel()
	const (
		goroutines = 8
		calls      = 2000
	)
	b := NewBreaker(BreakerOptions{Window: 10, Cooldown: time.Millisecond})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			now := t0
			for i := range calls {
				now = now.Add(time.Microsecond * 100)
				if ok, _ := b.Allow(now); ok {
					b.Report((i+g)%3 == 0, now)
				}
				_ = b.State()
			}
		})
	}
	wg.Wait()
}

func TestBreakerNil(t *testing.T) {
	t.Parallel()
	var b *Breaker
	if ok, retry := b.Allow(t0); !ok || retry != 0 {
		t.Fatalf("nil Allow = %v, %v", ok, retry)
	}
	b.Report(true, t0)
	if got := b.State(); got != StateClosed {
		t.Fatalf("nil State = %q", got)
	}
}
