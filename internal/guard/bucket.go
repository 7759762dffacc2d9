package guard

import "time"

// bucket is one key's token bucket. Credit is counted in units where one
// token is tokenCost; the bucket gains rate units per nanosecond.
type bucket struct {
	key    string
	credit int64 // credit at time seen, 0..capacity
	seen   int64 // nanoseconds since the limiter's epoch of the last refill
}

// refill brings the bucket's credit up to time t. A clock that stands still
// or goes backwards adds nothing.
func (b *bucket) refill(t, rate, capacity int64) {
	elapsed := t - b.seen
	if elapsed <= 0 {
		return
	}
	b.seen = t
	missing := capacity - b.credit
	// elapsed < RefillPeriod keeps elapsed*rate ≤ capacity: no overflow.
	if elapsed >= int64(RefillPeriod) || elapsed*rate >= missing {
		b.credit = capacity
		return
	}
	b.credit += elapsed * rate
}

// full reports whether the bucket has refilled completely by time t, that
// is whether it is indistinguishable from a missing bucket.
func (b *bucket) full(t, rate, capacity int64) bool {
	elapsed := max(t-b.seen, 0)
	return elapsed >= int64(RefillPeriod) || elapsed*rate >= capacity-b.credit
}

// take spends one token at time t, or reports how long until one exists.
func (b *bucket) take(t, rate, capacity int64) (bool, time.Duration) {
	b.refill(t, rate, capacity)
	if b.credit >= tokenCost {
		b.credit -= tokenCost
		return true, 0
	}
	missing := tokenCost - b.credit
	return false, time.Duration((missing + rate - 1) / rate)
}
