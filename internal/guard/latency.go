package guard

import (
	"slices"
	"sync/atomic"
	"time"
)

// DefaultLatencyRingSize is the number of durations a LatencyRing keeps when
// NewLatencyRing is given zero or less.
const DefaultLatencyRingSize = 1024

// Percentiles reported by LatencyRing.Percentiles, in percent.
const (
	percentMedian = 50
	percentP95    = 95
	percentP99    = 99
	percentAll    = 100
)

// LatencyRing keeps the last N request durations of one function. Record is
// lock-free and safe for concurrent use with itself and with Percentiles.
type LatencyRing struct {
	next  atomic.Uint64 // total number of Record calls
	slots []atomic.Int64
}

// NewLatencyRing returns a ring that keeps the last n durations
// (DefaultLatencyRingSize if n ≤ 0).
func NewLatencyRing(n int) *LatencyRing {
	if n <= 0 {
		n = DefaultLatencyRingSize
	}
	return &LatencyRing{slots: make([]atomic.Int64, n)}
}

// Record adds one duration, overwriting the oldest once the ring is full.
// Negative durations are recorded as zero.
func (r *LatencyRing) Record(d time.Duration) {
	i := r.next.Add(1) - 1
	r.slots[i%uint64(len(r.slots))].Store(int64(max(d, 0)))
}

// Percentiles returns the 50th, 95th and 99th percentiles (nearest rank) of
// the durations kept, and how many there are. It copies and sorts the ring,
// so it belongs on a metrics or health path, not a request path. A Record
// racing with it may be seen as a zero duration in a slot not yet written.
func (r *LatencyRing) Percentiles() (p50, p95, p99 time.Duration, count int) {
	count = int(min(r.next.Load(), uint64(len(r.slots))))
	if count == 0 {
		return 0, 0, 0, 0
	}
	sorted := make([]time.Duration, count)
	for i := range sorted {
		sorted[i] = time.Duration(r.slots[i].Load())
	}
	slices.Sort(sorted)
	return nearestRank(sorted, percentMedian), nearestRank(sorted, percentP95), nearestRank(sorted, percentP99), count
}

// nearestRank returns the smallest value with at least p percent of the
// sorted values at or below it.
func nearestRank(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + percentAll - 1) / percentAll
	return sorted[max(rank, 1)-1]
}
