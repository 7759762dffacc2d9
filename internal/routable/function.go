package routable

import (
	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/guard"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/upstream"
)

// Function is what the gateway needs to route to a function: its
// configuration, its pool of workers, its metrics and its guards. The
// control plane replaces the whole record on a reload; the gateway never
// writes to it.
type Function struct {
	Name    string
	Config  config.FunctionConfig
	Pool    *upstream.Pool
	Metrics *observe.FunctionMetrics
	// Per-function guards; RateLimiter is nil when the limit is off.
	RateLimiter *guard.RateLimiter
	Breaker     *guard.Breaker
	Latency     *guard.LatencyRing
	// Reporter reports the function's workers for /health; nil reports
	// none.
	Reporter StatusReporter
}

// StatusReporter reports a function's workers; lifecycle's Manager is one.
type StatusReporter interface {
	Status() FunctionStatus
}

// Table finds a routable function by name. Lookup must not allocate: it
// runs for every request. lifecycle's Supervisor is one.
type Table interface {
	Lookup(name []byte) *Function
}

// NewGuards builds a function's rate limiter, circuit breaker and latency
// ring from its configuration.
func NewGuards(f *Function) {
	f.RateLimiter = guard.NewRateLimiter(guard.RateLimitOptions{RPM: f.Config.RPM})
	f.Breaker = guard.NewBreaker(guard.BreakerOptions{ErrorRate: f.Config.Breaker.ErrorRate, Window: f.Config.Breaker.Window, Cooldown: f.Config.Breaker.Cooldown})
	f.Latency = guard.NewLatencyRing(guard.DefaultLatencyRingSize)
}

// Status returns the function's visible state.
func (f *Function) Status() FunctionStatus {
	if f.Reporter == nil {
		return FunctionStatus{Name: f.Name, Workers: []WorkerStatus{}}
	}
	return f.Reporter.Status()
}
