package guard

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"
	"time"
)

const (
	// evictSamples is how many random buckets a full shard inspects to
	// choose the one a new key replaces.
	evictSamples = 5

	// cacheLinePad keeps neighbouring shards' mutexes on different cache
	// lines.
	cacheLinePad = 64

	// minShardAlloc is the smallest bucket slice a shard allocates.
	minShardAlloc = 8

	// The shifts of Marsaglia's 64-bit xorshift generator.
	xorshiftA, xorshiftB, xorshiftC = 13, 7, 17
)

// rateShard is one independently locked part of a RateLimiter. Buckets live
// in a dense slice so eviction can sample them at random; index maps a key
// to its slot.
type rateShard struct {
	mu        sync.Mutex
	index     map[string]int
	buckets   []bucket
	max       int
	nextSweep int64
	rng       uint64 // xorshift state for eviction sampling; never 0
	_         [cacheLinePad]byte
}

// release gives an empty shard's storage back to the GC: Go maps never
// shrink, so a flood would otherwise pin its peak size.
func (s *rateShard) release() {
	s.buckets = nil
	s.index = make(map[string]int)
}

func (s *rateShard) init(maxKeys int) {
	s.max = max(maxKeys, 1)
	s.index = make(map[string]int)
	s.nextSweep = math.MinInt64
	s.rng = rand.Uint64() | 1
}

// randN returns a pseudo-random int in [0, n). The shard's lock guards the
// state, which makes this cheaper than the global generator; eviction needs
// spread, not secrecy.
func (s *rateShard) randN(n int) int {
	x := s.rng
	x ^= x << xorshiftA
	x ^= x >> xorshiftB
	x ^= x << xorshiftC
	s.rng = x
	hi, _ := bits.Mul64(x, uint64(n))
	return int(hi)
}

// take runs Allow for key at time t with the shard locked.
func (s *rateShard) take(l *RateLimiter, key []byte, t int64) (bool, time.Duration) {
	if t >= s.nextSweep {
		s.sweep(l, t)
		s.nextSweep = t + l.idleEvict
	}
	// Fast path: a known key; string(key) in an index expression does not
	// allocate.
	i, found := s.index[string(key)]
	if !found {
		// Slow path: a new key, which starts with a full bucket.
		if len(s.buckets) >= s.max {
			s.evict(l, t)
		}
		i = s.insert(key, t, l.capacity)
	}
	return s.buckets[i].take(t, l.rate, l.capacity)
}

func (s *rateShard) insert(key []byte, t, capacity int64) int {
	k := string(key)
	i := len(s.buckets)
	if i == cap(s.buckets) {
		// Grow by doubling, but never past the shard's bound.
		grown := make([]bucket, i, min(max(2*i, minShardAlloc), s.max))
		copy(grown, s.buckets)
		s.buckets = grown
	}
	s.buckets = append(s.buckets, bucket{key: k, credit: capacity, seen: t})
	s.index[k] = i
	return i
}

// remove deletes the bucket in slot i by moving the last bucket into it.
func (s *rateShard) remove(i int) {
	last := len(s.buckets) - 1
	delete(s.index, s.buckets[i].key)
	if i != last {
		s.buckets[i] = s.buckets[last]
		s.index[s.buckets[i].key] = i
	}
	s.buckets[last] = bucket{} // drop the key string for the GC
	s.buckets = s.buckets[:last]
}

// sweep drops every bucket that has refilled to full by time t. Walking
// down keeps remove's swap from skipping an unvisited bucket.
func (s *rateShard) sweep(l *RateLimiter, t int64) {
	for i := len(s.buckets) - 1; i >= 0; i-- {
		if s.buckets[i].full(t, l.rate, l.capacity) {
			s.remove(i)
		}
	}
}

// evict frees one slot in a full shard: the first sampled bucket that has
// refilled (dropping it changes nothing), else the least recently seen of
// the samples. Sampling keeps this O(1) under a flood of new keys.
func (s *rateShard) evict(l *RateLimiter, t int64) {
	victim := -1
	for range evictSamples {
		i := s.randN(len(s.buckets))
		b := &s.buckets[i]
		if b.full(t, l.rate, l.capacity) {
			victim = i
			break
		}
		if victim < 0 || b.seen < s.buckets[victim].seen {
			victim = i
		}
	}
	s.remove(victim)
}
