package guard

import (
	"hash/maphash"
	"math"
	"time"
)

// Rate limiter defaults and bounds.
const (
	// DefaultMaxKeys bounds how many client buckets one RateLimiter keeps
	// when RateLimitOptions.MaxKeys is zero.
	DefaultMaxKeys = 100_000

	// DefaultIdleEvict is how often each shard drops the buckets that have
	// refilled to full when RateLimitOptions.IdleEvict is zero. It equals
	// RefillPeriod: by then every bucket untouched since the last sweep is
	// full again.
	DefaultIdleEvict = RefillPeriod

	// RefillPeriod is the time an empty bucket takes to refill completely:
	// the burst is one minute's worth of requests.
	RefillPeriod = time.Minute

	// MaxRPM is the largest rate a RateLimiter represents exactly (a full
	// bucket holds RPM×RefillPeriod credit in an int64). Larger RPM values
	// are clamped to it.
	MaxRPM = math.MaxInt64 / int64(RefillPeriod)

	// rateLimitShards is the number of independently locked maps. It is a
	// power of two so a hash picks a shard with a mask.
	rateLimitShards = 64
)

// RateLimitOptions configures a RateLimiter. The zero value disables it.
type RateLimitOptions struct {
	// RPM is the sustained rate, in requests per minute, each key may
	// make. The burst is RPM requests: a new or long-idle key starts with
	// a full bucket. Zero or negative disables the limiter (Allow always
	// succeeds). Values above MaxRPM are clamped to MaxRPM.
	RPM int

	// MaxKeys bounds the number of buckets kept in memory. When a shard is
	// full, a new key evicts a bucket that has refilled (harmless) or else
	// the least recently seen of a few sampled buckets. Zero means
	// DefaultMaxKeys.
	MaxKeys int

	// IdleEvict is how often each shard sweeps out buckets that have
	// refilled to full: a full bucket behaves exactly like a missing one,
	// so dropping it never changes a decision. Sweeps run inline, inside
	// Allow, and cost one pass over one shard. Zero means DefaultIdleEvict.
	IdleEvict time.Duration
}

// RateLimiter is a token bucket per client key for one function. It is safe
// for concurrent use; a nil *RateLimiter allows everything.
//
// Each bucket holds up to RPM tokens and refills continuously at RPM tokens
// per RefillPeriod, without rounding: credit is kept in integer units of
// 1/RefillPeriod-nanoseconds of a token, so no fractional refill is lost and
// retry-after times are exact to the nanosecond.
type RateLimiter struct {
	rate      int64 // credit added per nanosecond (= RPM)
	capacity  int64 // credit of a full bucket (= RPM tokens)
	idleEvict int64 // nanoseconds between sweeps of a shard
	maxKeys   int
	epoch     time.Time
	seed      maphash.Seed
	shards    []rateShard
	mask      uint64
}

// tokenCost is the credit one request spends: one token.
const tokenCost = int64(RefillPeriod)

// NewRateLimiter builds a limiter from o. It returns nil, which allows
// everything, when o.RPM is zero or negative.
func NewRateLimiter(o RateLimitOptions) *RateLimiter {
	if o.RPM <= 0 {
		return nil
	}
	rpm := min(int64(o.RPM), MaxRPM)
	maxKeys := o.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	idle := o.IdleEvict
	if idle <= 0 {
		idle = DefaultIdleEvict
	}
	n := rateLimitShards
	for n > 1 && n > maxKeys {
		n /= 2
	}
	l := &RateLimiter{
		rate:      rpm,
		capacity:  rpm * tokenCost,
		idleEvict: int64(idle),
		epoch:     time.Now(),
		seed:      maphash.MakeSeed(),
		shards:    make([]rateShard, n),
		mask:      uint64(n - 1),
	}
	// Spread maxKeys over the shards; the first maxKeys%n get one more.
	for i := range l.shards {
		share := maxKeys / n
		if i < maxKeys%n {
			share++
		}
		l.shards[i].init(share)
	}
	l.maxKeys = maxKeys
	return l
}

// Allow spends one token from key's bucket at time now. When the bucket is
// empty it returns false and how long until a token is available. key is
// not retained; a new key costs one allocation (its copy), known keys none.
func (l *RateLimiter) Allow(key []byte, now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	t := int64(now.Sub(l.epoch))
	s := &l.shards[maphash.Bytes(l.seed, key)&l.mask]
	s.mu.Lock()
	ok, retryAfter = s.take(l, key, t)
	s.mu.Unlock()
	return ok, retryAfter
}

// Len returns the number of buckets currently kept.
func (l *RateLimiter) Len() int {
	if l == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

// MaxKeys returns the bound on Len.
func (l *RateLimiter) MaxKeys() int {
	if l == nil {
		return 0
	}
	return l.maxKeys
}

// Sweep drops every bucket that has refilled to full by now and returns how
// many it dropped; shards left empty also give their storage back to the
// GC. Allow sweeps each shard it touches once per IdleEvict but never
// shrinks one; Sweep lets an owner reclaim memory when traffic stops.
func (l *RateLimiter) Sweep(now time.Time) int {
	if l == nil {
		return 0
	}
	t := int64(now.Sub(l.epoch))
	dropped := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		before := len(s.buckets)
		s.sweep(l, t)
		s.nextSweep = t + l.idleEvict
		dropped += before - len(s.buckets)
		if len(s.buckets) == 0 && before > 0 {
			s.release()
		}
		s.mu.Unlock()
	}
	return dropped
}
