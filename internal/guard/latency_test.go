package guard

import (
	"sync"
	"testing"
	"time"
)

func TestLatencyRingPercentiles(t *testing.T) {
	t.Parallel()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name          string
		size          int
		record        []time.Duration
		p50, p95, p99 time.Duration
		count         int
	}{
		{name: "empty", size: 10},
		{name: "one", size: 10, record: []time.Duration{ms(7)}, p50: ms(7), p95: ms(7), p99: ms(7), count: 1},
		{name: "1..100 ms", size: 100, record: seq(1, 100), p50: ms(50), p95: ms(95), p99: ms(99), count: 100},
		{name: "unordered", size: 10, record: []time.Duration{ms(9), ms(1), ms(5), ms(3), ms(7)}, p50: ms(5), p95: ms(9), p99: ms(9), count: 5},
		{name: "keeps the last n", size: 10, record: seq(1, 25), p50: ms(20), p95: ms(25), p99: ms(25), count: 10},
		{name: "negative is zero", size: 4, record: []time.Duration{-ms(5)}, count: 1},
		{name: "default size", size: 0, record: seq(1, 2000), p50: ms(1488), p95: ms(1949), p99: ms(1990), count: DefaultLatencyRingSize},
	}
	for _, tt := range tests {
		r := NewLatencyRing(tt.size)
		for _, d := range tt.record {
			r.Record(d)
		}
		p50, p95, p99, count := r.Percentiles()
		if p50 != tt.p50 || p95 != tt.p95 || p99 != tt.p99 || count != tt.count {
			t.Errorf("%s: got %v %v %v n=%d, want %v %v %v n=%d", tt.name, p50, p95, p99, count, tt.p50, tt.p95, tt.p99, tt.count)
		}
	}
}

// seq returns from..to milliseconds.
func seq(from, to int) []time.Duration {
	var out []time.Duration
	for i := from; i <= to; i++ {
		out = append(out, time.Duration(i)*time.Millisecond)
	}
	return out
}

func TestLatencyRingConcurrent(t *testing.T) {
	t.Parallel()
	const (
		writers = 8
		records = 5000
		size    = 256
	)
	r := NewLatencyRing(size)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := range records {
				r.Record(time.Duration(i))
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			if _, _, _, n := r.Percentiles(); n > size {
				t.Errorf("count %d > size %d", n, size)
			}
		}
	})
	wg.Wait()
	if _, _, _, n := r.Percentiles(); n != size {
		t.Fatalf("count = %d, want %d", n, size)
	}
}
