package guard

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rlStep is one Allow call at t0+at and its expected answer.
type rlStep struct {
	at        time.Duration
	times     int // calls at that instant; 0 means 1
	wantOK    bool
	wantRetry time.Duration // of the last call
}

func TestRateLimiterRefill(t *testing.T) {
	t.Parallel()
	// RPM 7 refills one token every 60s/7 = 8.571428571428…s: not a whole
	// number of nanoseconds, so rounding would show.
	const tick7 = 8571428571 * time.Nanosecond
	tests := []struct {
		name  string
		rpm   int
		steps []rlStep
	}{
		{"burst is one minute's worth", 60, []rlStep{
			{at: 0, times: 60, wantOK: true},
			{at: 0, wantOK: false, wantRetry: time.Second},
		}},
		{"retry-after shrinks as credit refills", 60, []rlStep{
			{at: 0, times: 60, wantOK: true},
			{at: 250 * time.Millisecond, wantOK: false, wantRetry: 750 * time.Millisecond},
			{at: 999 * time.Millisecond, wantOK: false, wantRetry: time.Millisecond},
			{at: time.Second, wantOK: true},
			{at: time.Second, wantOK: false, wantRetry: time.Second},
		}},
		{"retry-after is exact and rounded up to the nanosecond", 7, []rlStep{
			{at: 0, times: 7, wantOK: true},
			{at: 0, wantOK: false, wantRetry: tick7 + 1},
			{at: tick7, wantOK: false, wantRetry: 1},
			{at: tick7 + 1, wantOK: true},
		}},
		{"denied calls lose no fractional refill", 7, []rlStep{
			{at: 0, times: 7, wantOK: true},
			{at: 3 * time.Second, wantOK: false, wantRetry: tick7 + 1 - 3*time.Second},
			{at: 5 * time.Second, wantOK: false, wantRetry: tick7 + 1 - 5*time.Second},
			{at: time.Minute, times: 7, wantOK: true},
			{at: time.Minute, wantOK: false, wantRetry: tick7 + 1},
		}},
		{"refill stops at the burst", 2, []rlStep{
			{at: 0, times: 2, wantOK: true},
			{at: time.Hour, times: 2, wantOK: true},
			{at: time.Hour, wantOK: false, wantRetry: 30 * time.Second},
		}},
		{"a clock going backwards refills nothing", 60, []rlStep{
			{at: time.Minute, times: 60, wantOK: true},
			{at: 0, wantOK: false, wantRetry: time.Second},
			{at: time.Minute + time.Second, wantOK: true},
		}},
		{"1 rpm", 1, []rlStep{
			{at: 0, wantOK: true},
			{at: 0, wantOK: false, wantRetry: time.Minute},
			{at: 59 * time.Second, wantOK: false, wantRetry: time.Second},
			{at: time.Minute, wantOK: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := NewRateLimiter(RateLimitOptions{RPM: tt.rpm})
			key := []byte("user:42")
			for i, s := range tt.steps {
				var ok bool
				var retry time.Duration
				for range max(s.times, 1) {
					ok, retry = l.Allow(key, t0.Add(s.at))
					if ok != s.wantOK {
						t.Fatalf("step %d at %v: ok = %v, want %v", i, s.at, ok, s.wantOK)
					}
				}
				if retry != s.wantRetry {
					t.Fatalf("step %d at %v: retryAfter = %v, want %v", i, s.at, retry, s.wantRetry)
				}
			}
		})
	}
}

func TestRateLimiterKeysAreIndependent(t *testing.T) {
	t.Parallel()
	l := NewRateLimiter(RateLimitOptions{RPM: 1})
	if ok, _ := l.Allow([]byte("a"), t0); !ok {
		t.Fatal("first call for a refused")
	}
	if ok, _ := l.Allow([]byte("a"), t0); ok {
		t.Fatal("second call for a allowed")
	}
	if ok, _ := l.Allow([]byte("b"), t0); !ok {
		t.Fatal("first call for b refused")
	}
	if got := l.Len(); got != 2 {
		t.Fatalf("Len = %d, want 2", got)
	}
}

func TestRateLimiterDisabled(t *testing.T) {
	t.Parallel()
	for _, rpm := range []int{0, -1} {
		l := NewRateLimiter(RateLimitOptions{RPM: rpm})
		for range 1000 {
			if ok, retry := l.Allow([]byte("k"), t0); !ok || retry != 0 {
				t.Fatalf("RPM %d: Allow = %v, %v; want true, 0", rpm, ok, retry)
			}
		}
		if l.Len() != 0 || l.MaxKeys() != 0 || l.Sweep(t0) != 0 {
			t.Fatalf("RPM %d: disabled limiter keeps state", rpm)
		}
	}
}

func TestRateLimiterClampsRPM(t *testing.T) {
	t.Parallel()
	l := NewRateLimiter(RateLimitOptions{RPM: int(MaxRPM) + 1_000})
	if l.rate != MaxRPM {
		t.Fatalf("rate = %d, want MaxRPM %d", l.rate, MaxRPM)
	}
	key := []byte("k")
	for range 1000 {
		if ok, _ := l.Allow(key, t0); !ok {
			t.Fatal("refused within the burst")
		}
	}
	// Far in the future the refill must saturate, not overflow.
	if ok, _ := l.Allow(key, t0.Add(100*365*24*time.Hour)); !ok {
		t.Fatal("refused after a century")
	}
}

func TestRateLimiterMaxKeysOption(t *testing.T) {
	t.Parallel()
	tests := []struct {
		maxKeys, want int
	}{
		{0, DefaultMaxKeys},
		{1, 1},
		{3, 3},
		{100, 100},
		{100_001, 100_001},
	}
	for _, tt := range tests {
		l := NewRateLimiter(RateLimitOptions{RPM: 1, MaxKeys: tt.maxKeys})
		if got := l.MaxKeys(); got != tt.want {
			t.Errorf("MaxKeys %d: bound = %d, want %d", tt.maxKeys, got, tt.want)
		}
	}
}

// key8 writes i as an 8-byte key into buf.
func key8(buf []byte, i uint64) []byte {
	binary.LittleEndian.PutUint64(buf, i)
	return buf
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestRateLimiterFloodStaysBounded(t *testing.T) {
	const (
		distinct = 100_000
		churn    = 10 * distinct
		maxKeys  = 10_000
		// maxBytesPerKey is a generous ceiling on the heap one kept
		// 8-byte key costs (bucket slot, map entry, key copy; about
		// 100 B measured), to catch growth with distinct keys.
		maxBytesPerKey = 512
	)
	tests := []struct {
		name     string
		distinct int
		maxKeys  int
		step     time.Duration // clock advance per key
	}{
		// All keys in the same instant: no bucket refills, so only
		// sampled eviction keeps the bound.
		{"frozen clock, cap 10000", distinct, maxKeys, 0},
		// One key per millisecond at 60 rpm: buckets refill within a
		// second, so eviction finds full ones.
		{"moving clock, cap 10000", distinct, maxKeys, time.Millisecond},
		{"frozen clock, default cap", distinct, 0, 0},
		// Long churn must not leak through map tombstones.
		{"frozen clock, 1M keys, cap 10000", churn, maxKeys, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.distinct > distinct && (testing.Short() || raceEnabled) {
				t.Skip("long churn: skipped in -short and -race runs")
			}
			before := heapAlloc()
			l := NewRateLimiter(RateLimitOptions{RPM: 60, MaxKeys: tt.maxKeys})
			var buf [8]byte
			now := t0
			for i := range uint64(tt.distinct) {
				if ok, _ := l.Allow(key8(buf[:], i), now); !ok {
					t.Fatalf("key %d refused on its first call", i)
				}
				now = now.Add(tt.step)
			}
			after := heapAlloc()
			n, bound := l.Len(), l.MaxKeys()
			t.Logf("%d distinct keys: Len %d (cap %d), HeapAlloc delta %d KiB (%.0f B/key kept)",
				tt.distinct, n, bound, (int64(after)-int64(before))/1024, float64(int64(after)-int64(before))/float64(n))
			if n > bound {
				t.Fatalf("Len %d > cap %d", n, bound)
			}
			if delta := int64(after) - int64(before); delta > int64(bound)*maxBytesPerKey {
				t.Fatalf("heap grew %d B for a cap of %d keys", delta, bound)
			}
			if tt.maxKeys != 0 && bound > tt.maxKeys {
				t.Fatalf("cap %d > MaxKeys %d", bound, tt.maxKeys)
			}
			if dropped := l.Sweep(now.Add(RefillPeriod)); l.Len() != 0 || dropped != n {
				t.Fatalf("Sweep after a refill period dropped %d of %d, left %d", dropped, n, l.Len())
			}
			t.Logf("after Sweep: HeapAlloc delta %d KiB", (int64(heapAlloc())-int64(before))/1024)
			runtime.KeepAlive(l)
		})
	}
}

func TestRateLimiterEvictionPrefersStaleBuckets(t *testing.T) {
	t.Parallel()
	// One shard of one bucket: a new key must evict the old one, and the
	// old key then starts again from a full bucket.
	l := NewRateLimiter(RateLimitOptions{RPM: 1, MaxKeys: 1})
	a, b := []byte("a"), []byte("b")
	l.Allow(a, t0)
	l.Allow(b, t0.Add(time.Second))
	if got := l.Len(); got != 1 {
		t.Fatalf("Len = %d, want 1", got)
	}
	if ok, _ := l.Allow(b, t0.Add(time.Second)); ok {
		t.Fatal("b, the newer key, lost its bucket")
	}
}

func TestRateLimiterInlineSweep(t *testing.T) {
	t.Parallel()
	const keys = 10_000
	l := NewRateLimiter(RateLimitOptions{RPM: 60, IdleEvict: time.Minute})
	var buf [8]byte
	for i := range uint64(keys) {
		l.Allow(key8(buf[:], i), t0)
	}
	// Before IdleEvict has passed no shard sweeps, even though every old
	// bucket has refilled by now.
	for i := range uint64(keys) {
		l.Allow(key8(buf[:], keys+i), t0.Add(30*time.Second))
	}
	if got := l.Len(); got != 2*keys {
		t.Fatalf("Len before IdleEvict = %d, want %d", got, 2*keys)
	}
	// After it, the first call into each shard sweeps it: 10 000 new keys
	// touch all 64 shards.
	for i := range uint64(keys) {
		l.Allow(key8(buf[:], 2*keys+i), t0.Add(2*time.Minute))
	}
	if got := l.Len(); got != keys {
		t.Fatalf("Len after IdleEvict = %d, want %d (the new keys only)", got, keys)
	}
}

func TestRateLimiterSweepKeepsPartialBuckets(t *testing.T) {
	t.Parallel()
	l := NewRateLimiter(RateLimitOptions{RPM: 60})
	l.Allow([]byte("busy"), t0)
	if n := l.Sweep(t0.Add(999 * time.Millisecond)); n != 0 {
		t.Fatalf("Sweep dropped %d partially spent buckets", n)
	}
	if n := l.Sweep(t0.Add(time.Second)); n != 1 {
		t.Fatalf("Sweep dropped %d refilled buckets, want 1", n)
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	t.Parallel()
	const (
		rpm        = 100
		goroutines = 8
		calls      = 50 // per goroutine and key: 400 calls for 100 tokens
		keys       = 16
	)
	l := NewRateLimiter(RateLimitOptions{RPM: rpm, MaxKeys: 64})
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			var buf [8]byte
			for range calls {
				for k := range uint64(keys) {
					if ok, _ := l.Allow(key8(buf[:], k), t0); ok {
						allowed[k].Add(1)
					}
				}
			}
		})
	}
	// Meanwhile a flood of one-off keys churns the shards.
	wg.Go(func() {
		var buf [8]byte
		for i := range uint64(10_000) {
			l.Allow(key8(buf[:], 1<<32+i), t0)
		}
	})
	wg.Wait()
	if got := l.Len(); got > l.MaxKeys() {
		t.Fatalf("Len %d > cap %d", got, l.MaxKeys())
	}
	for k := range allowed {
		// A key evicted by the flood comes back with a full bucket, so
		// it may get more than one burst, never less.
		if got := allowed[k].Load(); got < rpm {
			t.Errorf("key %d: %d calls allowed in a frozen instant, want at least %d", k, got, rpm)
		}
	}
}

func TestRateLimiterConcurrentExactBurst(t *testing.T) {
	t.Parallel()
	const (
		rpm        = 100
		goroutines = 8
		calls      = 50
	)
	l := NewRateLimiter(RateLimitOptions{RPM: rpm})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range calls {
				if ok, _ := l.Allow([]byte("shared"), t0); ok {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != rpm {
		t.Fatalf("%d calls allowed in a frozen instant, want the burst %d", got, rpm)
	}
}

func TestRateLimiterNil(t *testing.T) {
	t.Parallel()
	var l *RateLimiter
	if ok, retry := l.Allow([]byte("k"), t0); !ok || retry != 0 {
		t.Fatalf("nil Allow = %v, %v", ok, retry)
	}
}
