package guard

import (
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRateLimiterHit is the steady state: one known key, allowed.
func BenchmarkRateLimiterHit(b *testing.B) {
	l := NewRateLimiter(RateLimitOptions{RPM: int(MaxRPM)})
	key := []byte("user:0123456789abcdef")
	now := t0
	l.Allow(key, now)
	for b.Loop() {
		l.Allow(key, now)
	}
}

// BenchmarkRateLimiterHitParallel spreads known keys over the shards from
// every P.
func BenchmarkRateLimiterHitParallel(b *testing.B) {
	const keys = 1024
	l := NewRateLimiter(RateLimitOptions{RPM: int(MaxRPM)})
	var seq atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		var buf [8]byte
		i := seq.Add(1) << 32
		for pb.Next() {
			i++
			l.Allow(key8(buf[:], i%keys), t0)
		}
	})
}

// BenchmarkRateLimiterDistinctKeys is a flood of never-seen keys against a
// full limiter: every call inserts a key and evicts one. The clock moves 1µs
// per call, so sweeps and refilled buckets play their part.
func BenchmarkRateLimiterDistinctKeys(b *testing.B) {
	l := NewRateLimiter(RateLimitOptions{RPM: 60})
	var buf [8]byte
	now := t0
	for i := range uint64(DefaultMaxKeys) {
		l.Allow(key8(buf[:], i), now)
	}
	i := uint64(DefaultMaxKeys)
	for b.Loop() {
		i++
		now = now.Add(time.Microsecond)
		l.Allow(key8(buf[:], i), now)
	}
	b.ReportMetric(float64(l.Len()), "keys")
}
