package guard

import "testing"

// BenchmarkBreakerAllowClosed is the per-request check of a healthy
// function: one atomic load.
func BenchmarkBreakerAllowClosed(b *testing.B) {
	br := NewBreaker(BreakerOptions{})
	for b.Loop() {
		br.Allow(t0)
	}
}

// BenchmarkBreakerAllowOpen is a refused call: two atomic loads.
func BenchmarkBreakerAllowOpen(b *testing.B) {
	br := NewBreaker(BreakerOptions{Window: 1})
	br.Report(true, t0)
	for b.Loop() {
		br.Allow(t0)
	}
}

// BenchmarkBreakerAllowReport is one request's whole cost: Allow, then
// Report under the window mutex.
func BenchmarkBreakerAllowReport(b *testing.B) {
	br := NewBreaker(BreakerOptions{ErrorRate: 2}) // never opens
	failure := false
	for b.Loop() {
		br.Allow(t0)
		br.Report(failure, t0)
		failure = !failure
	}
}

// BenchmarkBreakerAllowReportParallel measures the window mutex under
// contention from every P.
func BenchmarkBreakerAllowReportParallel(b *testing.B) {
	br := NewBreaker(BreakerOptions{ErrorRate: 2})
	b.RunParallel(func(pb *testing.PB) {
		failure := false
		for pb.Next() {
			br.Allow(t0)
			br.Report(failure, t0)
			failure = !failure
		}
	})
}
