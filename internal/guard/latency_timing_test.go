package guard

import (
	"testing"
	"time"
)

func BenchmarkLatencyRingRecord(b *testing.B) {
	r := NewLatencyRing(0)
	for b.Loop() {
		r.Record(time.Millisecond)
	}
}

func BenchmarkLatencyRingRecordParallel(b *testing.B) {
	r := NewLatencyRing(0)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(time.Millisecond)
		}
	})
}

func BenchmarkLatencyRingPercentiles(b *testing.B) {
	r := NewLatencyRing(0)
	for i := range DefaultLatencyRingSize {
		r.Record(time.Duration(i*7919%DefaultLatencyRingSize) * time.Microsecond)
	}
	for b.Loop() {
		r.Percentiles()
	}
}
