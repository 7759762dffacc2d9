package ratestore

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkStoreAllow is the per-request cost of the shared limit: one
// EVALSHA round trip to a redis-server on this machine (over loopback TCP),
// one known client, allowed. Compare BenchmarkRateLimiterHit in guard.
func BenchmarkStoreAllow(b *testing.B) {
	r := startRedis(b)
	s, _ := newStore(b, r.url(), Options{})
	key := []byte("s:0123456789abcdef")
	const rpm = 1 << 40 // never refused
	s.Allow("hello", rpm, key)
	b.ReportAllocs()
	for b.Loop() {
		if res := s.Allow("hello", rpm, key); res.Unchecked {
			b.Fatal("store did not answer")
		}
	}
}

// BenchmarkStoreAllowParallel: every P asks at once for 1024 clients, as a
// loaded gateway does (the client's connection pool is shared).
func BenchmarkStoreAllowParallel(b *testing.B) {
	r := startRedis(b)
	s, _ := newStore(b, r.url(), Options{})
	const rpm = 1 << 40
	var seq atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := seq.Add(1) << 32
		for pb.Next() {
			i++
			if res := s.Allow("hello", rpm, []byte("i:"+strconv.FormatUint(i%1024, 10))); res.Unchecked {
				b.Error("store did not answer")
				return
			}
		}
	})
}
