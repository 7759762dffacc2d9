package upstream

import (
	"testing"
	"time"
)

// pipeWorker returns a worker whose pipelined slots hold connections with
// the given depth and head age (no socket: pickPipe only reads counters).
func pipeWorker(now int64, slots []struct {
	depth int32
	age   time.Duration
}) *Worker {
	p := NewPool(PoolOptions{Pipeline: PipelineOptions{Conns: len(slots), Depth: 4, MaxAge: 10 * time.Millisecond}})
	w := NewWorker(p, 1, 0, "", WorkerOptions{})
	for i, s := range slots {
		pc := &pconn{}
		pc.depth.Store(s.depth)
		if s.depth > 0 {
			pc.oldest.Store(now - int64(s.age))
		}
		w.pipes[i].Store(pc)
	}
	return w
}

func TestPickPipe(t *testing.T) {
	type slot = struct {
		depth int32
		age   time.Duration
	}
	ms := time.Millisecond
	tests := []struct {
		name  string
		slots []slot
		want  int // index picked, -1 = none (exclusive connection)
	}{
		{"idle connection first", []slot{{2, ms / 10}, {0, 0}}, 1},
		{"youngest head wins over fewer in flight", []slot{{1, 5 * ms}, {2, ms / 10}}, 1},
		{"youngest head wins on equal depth", []slot{{1, 5 * ms}, {1, ms / 10}}, 1},
		{"fewest in flight on equal age", []slot{{3, ms}, {2, ms}}, 1},
		{"never behind a head older than max age", []slot{{1, 20 * ms}, {1, 11 * ms}}, -1},
		{"the one under max age", []slot{{1, 20 * ms}, {3, 2 * ms}}, 1},
		{"full connections are skipped", []slot{{4, ms / 10}, {2, 3 * ms}}, 1},
		{"all full", []slot{{4, ms / 10}, {4, ms / 10}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now().UnixNano()
			w := pipeWorker(now, tt.slots)
			before := make([]int32, len(tt.slots))
			for i := range tt.slots {
				before[i] = w.pipes[i].Load().depth.Load()
			}
			got := w.pickPipe(now)
			gotIdx := -1
			for i := range w.pipes {
				if w.pipes[i].Load() == got && got != nil {
					gotIdx = i
				}
			}
			if gotIdx != tt.want {
				t.Fatalf("picked slot %d, want %d", gotIdx, tt.want)
			}
			for i := range tt.slots {
				want := before[i]
				if i == gotIdx {
					want++
				}
				if d := w.pipes[i].Load().depth.Load(); d != want {
					t.Errorf("slot %d depth %d, want %d (exactly one place claimed on the pick)", i, d, want)
				}
			}
		})
	}
}
