package guard

import (
	"sync"
	"sync/atomic"
	"time"
)

// Circuit breaker defaults.
const (
	// DefaultErrorRate is the failure share of the window that opens the
	// breaker when BreakerOptions.ErrorRate is zero.
	DefaultErrorRate = 0.5

	// DefaultWindow is the number of most recent calls the error rate is
	// computed over when BreakerOptions.Window is zero.
	DefaultWindow = 20

	// DefaultCooldown is how long an open breaker refuses calls when
	// BreakerOptions.Cooldown is zero.
	DefaultCooldown = 30 * time.Second
)

// Breaker states, as returned by Breaker.State.
const (
	StateClosed   = "closed"
	StateOpen     = "open"
	StateHalfOpen = "half-open"
)

const (
	stateClosed int32 = iota
	stateOpen
	stateHalfOpen
)

// BreakerOptions configures a Breaker. The zero value uses the defaults.
type BreakerOptions struct {
	// ErrorRate is the share of failures among the last Window calls, from
	// 0 to 1, at or above which the breaker opens. Zero or negative means
	// DefaultErrorRate; a value above 1 never opens.
	ErrorRate float64

	// Window is how many of the most recent outcomes are kept. Zero or
	// negative means DefaultWindow.
	Window int

	// MinCalls is how many outcomes the window must hold before the
	// breaker may open. Zero or negative means Window (no opening before a
	// full window); values above Window are clamped to Window.
	MinCalls int

	// Cooldown is how long an open breaker refuses calls before letting a
	// single probe through. Zero or negative means DefaultCooldown.
	Cooldown time.Duration

	// ProbeTimeout is how long a half-open breaker waits for the probe's
	// Report before it admits another probe, so a probe whose outcome is
	// never reported cannot wedge the breaker. Zero or negative means
	// Cooldown.
	ProbeTimeout time.Duration
}

// Breaker is a circuit breaker for one function. It is safe for concurrent
// use; a nil *Breaker allows everything.
//
// Closed, it admits every call and keeps the outcomes of the last Window
// calls; when at least MinCalls are recorded and the failure share reaches
// ErrorRate it opens. Open, it refuses calls until Cooldown has passed, then
// turns half-open and admits exactly one probe; other callers are refused
// while the probe is outstanding. The probe's success closes the breaker
// with an empty window, its failure reopens it for another Cooldown.
//
// Report cannot tell the probe from a call admitted before the breaker
// opened that finishes late: whichever reports first while half-open decides.
// Keep function timeouts shorter than Cooldown to rule that out.
type Breaker struct {
	state atomic.Int32
	// until is, in nanoseconds since epoch, the end of the cooldown while
	// open and the probe's deadline while half-open. It is stored before
	// state, so a reader that sees a non-closed state sees its deadline.
	until atomic.Int64

	epoch        time.Time
	errorRate    float64
	minCalls     int
	cooldown     int64
	probeTimeout int64

	mu       sync.Mutex // guards transitions and the window
	outcomes []bool     // ring of the last calls; true is a failure
	next     int        // ring slot the next outcome goes to
	calls    int        // outcomes recorded, ≤ len(outcomes)
	failures int        // failures among them
}

// NewBreaker builds a closed breaker from o.
func NewBreaker(o BreakerOptions) *Breaker {
	rate := o.ErrorRate
	if !(rate > 0) {
		rate = DefaultErrorRate
	}
	window := o.Window
	if window <= 0 {
		window = DefaultWindow
	}
	minCalls := o.MinCalls
	if minCalls <= 0 || minCalls > window {
		minCalls = window
	}
	cooldown := o.Cooldown
	if cooldown <= 0 {
		cooldown = DefaultCooldown
	}
	probe := o.ProbeTimeout
	if probe <= 0 {
		probe = cooldown
	}
	return &Breaker{
		epoch:        time.Now(),
		errorRate:    rate,
		minCalls:     minCalls,
		cooldown:     int64(cooldown),
		probeTimeout: int64(probe),
		outcomes:     make([]bool, window),
	}
}

// Allow reports whether a call may proceed at time now. When it may not, it
// also returns how long until the breaker will next admit a call.
func (b *Breaker) Allow(now time.Time) (ok bool, retryAfter time.Duration) {
	// Fast path: closed is one atomic load.
	if b == nil || b.state.Load() == stateClosed {
		return true, 0
	}
	t := int64(now.Sub(b.epoch))
	if until := b.until.Load(); t < until {
		return false, time.Duration(until - t)
	}
	// Slow path: the cooldown or the probe deadline has passed.
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state.Load() == stateClosed {
		return true, 0
	}
	if until := b.until.Load(); t < until {
		return false, time.Duration(until - t)
	}
	b.until.Store(t + b.probeTimeout)
	b.state.Store(stateHalfOpen)
	return true, 0
}

// Report records the outcome of a call admitted by Allow. failure is the
// caller's decision: gateway-made 5xx and timeouts are failures, the
// function's own 4xx are not. Reports that arrive while open are ignored.
func (b *Breaker) Report(failure bool, now time.Time) {
	if b == nil {
		return
	}
	t := int64(now.Sub(b.epoch))
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state.Load() {
	case stateClosed:
		b.record(failure)
		if b.calls >= b.minCalls && float64(b.failures) >= b.errorRate*float64(b.calls) {
			b.open(t)
		}
	case stateHalfOpen:
		if failure {
			b.open(t)
			return
		}
		b.reset()
		b.state.Store(stateClosed)
	}
}

// State returns StateClosed, StateOpen or StateHalfOpen. An open breaker
// whose cooldown has passed stays "open" until the next Allow.
func (b *Breaker) State() string {
	if b == nil {
		return StateClosed
	}
	switch b.state.Load() {
	case stateOpen:
		return StateOpen
	case stateHalfOpen:
		return StateHalfOpen
	default:
		return StateClosed
	}
}

// record adds one outcome to the window, forgetting the oldest when full.
func (b *Breaker) record(failure bool) {
	if b.calls == len(b.outcomes) {
		if b.outcomes[b.next] {
			b.failures--
		}
	} else {
		b.calls++
	}
	b.outcomes[b.next] = failure
	if failure {
		b.failures++
	}
	b.next++
	if b.next == len(b.outcomes) {
		b.next = 0
	}
}

// open refuses calls for a cooldown from t. Called with mu held.
func (b *Breaker) open(t int64) {
	b.reset()
	b.until.Store(t + b.cooldown)
	b.state.Store(stateOpen)
}

// reset empties the window. Called with mu held.
func (b *Breaker) reset() {
	clear(b.outcomes)
	b.next, b.calls, b.failures = 0, 0, 0
}
