package upstream

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestPool(n int, o PoolOptions) (*Pool, []*Worker) {
	if o.MaxWorkers == 0 {
		o.MaxWorkers = n
	}
	p := NewPool(o)
	ws := make([]*Worker, n)
	for i := range ws {
		ws[i] = NewWorker(p, uint64(i+1), 0, "/nonexistent", WorkerOptions{MaxIdleConns: 1, DialTimeout: time.Second, BufferSize: 4096})
	}
	p.Publish(Snapshot{Workers: ws, Total: n})
	return p, ws
}

func TestPickPrefersIdleThenLeastLoaded(t *testing.T) {
	p, ws := newTestPool(3, PoolOptions{})
	ws[0].inflight.Store(5)
	ws[1].inflight.Store(2)
	ws[2].inflight.Store(7)
	w, allBusy := p.pick(ws)
	if w != ws[1] || !allBusy {
		t.Fatalf("picked worker %d (allBusy=%v), want the least loaded (2)", w.ID, allBusy)
	}
	ws[2].inflight.Store(0)
	if w, allBusy := p.pick(ws); w != ws[2] || allBusy {
		t.Fatalf("picked worker %d, want the idle one (3)", w.ID)
	}
}

func TestPickRespectsMaxConcurrency(t *testing.T) {
	p, ws := newTestPool(2, PoolOptions{MaxConcurrency: 2})
	for i := 0; i < 4; i++ {
		if w, _ := p.pick(ws); w == nil {
			t.Fatalf("claim %d refused below the limit", i)
		}
	}
	if w, _ := p.pick(ws); w != nil {
		t.Fatalf("claimed worker %d beyond maxConcurrency", w.ID)
	}
	if ws[0].InFlight() != 2 || ws[1].InFlight() != 2 {
		t.Fatalf("load not spread: %d %d", ws[0].InFlight(), ws[1].InFlight())
	}
}

func TestAcquireSpreadsEqualLoad(t *testing.T) {
	p, ws := newTestPool(4, PoolOptions{})
	for _, w := range ws {
		w.inflight.Store(1)
	}
	seen := map[uint64]int{}
	for i := 0; i < 400; i++ {
		w, _ := p.pick(ws)
		seen[w.ID]++
		w.inflight.Add(-1)
	}
	for _, w := range ws {
		if seen[w.ID] == 0 {
			t.Fatalf("worker %d never picked at equal load: %v", w.ID, seen)
		}
	}
}

// Concurrent claims and releases keep every counter exact and within the
// limit (run with -race).
func TestPickConcurrentClaimsAreExact(t *testing.T) {
	const limit = 3
	p, ws := newTestPool(4, PoolOptions{MaxConcurrency: limit})
	var over atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				w, _ := p.pick(ws)
				if w == nil {
					continue
				}
				if w.InFlight() > limit {
					over.Add(1)
				}
				w.unclaim()
			}
		}()
	}
	wg.Wait()
	if over.Load() != 0 {
		t.Fatalf("limit exceeded %d times", over.Load())
	}
	for _, w := range ws {
		if w.InFlight() != 0 {
			t.Fatalf("worker %d left at %d in flight", w.ID, w.InFlight())
		}
	}
}

func TestAcquireWaitsForSlotThenOverloads(t *testing.T) {
	p, ws := newTestPool(1, PoolOptions{MaxConcurrency: 1, MaxQueue: 1, QueueTimeout: time.Minute})
	first, err := p.Acquire(time.Now().Add(time.Minute))
	if err != nil || first != ws[0] {
		t.Fatalf("first acquire: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		w, err := p.Acquire(time.Now().Add(time.Minute))
		if err == nil {
			w.release()
		}
		got <- err
	}()
	for p.queued.Load() != 1 { // the second request has joined the queue
		time.Sleep(time.Millisecond)
	}
	if _, err := p.Acquire(time.Now().Add(time.Minute)); err != ErrOverloaded {
		t.Fatalf("third acquire with a full queue: %v, want ErrOverloaded", err)
	}
	first.release()
	if err := <-got; err != nil {
		t.Fatalf("queued request: %v", err)
	}
}

func TestAcquireReportsBootFailureAndCrashLoop(t *testing.T) {
	p := NewPool(PoolOptions{MaxWorkers: 1})
	errc := make(chan error, 1)
	go func() {
		_, err := p.Acquire(time.Now().Add(time.Minute))
		errc <- err
	}()
	<-p.Nudges() // the request asked for a worker
	p.Publish(Snapshot{BootFailures: 1})
	if err := <-errc; err != ErrBoot {
		t.Fatalf("got %v, want ErrBoot", err)
	}
	p.Publish(Snapshot{CrashLoopUntil: time.Now().Add(time.Minute)})
	if _, err := p.Acquire(time.Now().Add(time.Minute)); err != ErrCrashLoop {
		t.Fatalf("got %v, want ErrCrashLoop", err)
	}
	p.Publish(Snapshot{Closed: true})
	if _, err := p.Acquire(time.Now().Add(time.Minute)); err != ErrClosed {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

func TestDrainWaitsForInFlight(t *testing.T) {
	p, ws := newTestPool(1, PoolOptions{})
	w, _ := p.Acquire(time.Now().Add(time.Minute))
	drained := ws[0].Drain()
	select {
	case <-drained:
		t.Fatal("drained with a request in flight")
	default:
	}
	w.release()
	<-drained
	if _, err := p.Acquire(time.Now().Add(10 * time.Millisecond)); err == nil {
		t.Fatal("a draining worker took a new request")
	}
}

func TestPickAllocatesNothing(t *testing.T) {
	p, ws := newTestPool(8, PoolOptions{})
	deadline := time.Now().Add(time.Hour)
	allocs := testing.AllocsPerRun(1000, func() {
		w, err := p.Acquire(deadline)
		if err != nil {
			t.Fatal(err)
		}
		w.unclaim()
	})
	if allocs != 0 {
		t.Fatalf("Acquire allocates %.1f times", allocs)
	}
	_ = ws
}

func BenchmarkAcquire(b *testing.B) {
	p, _ := newTestPool(8, PoolOptions{})
	deadline := time.Now().Add(time.Hour)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w, _ := p.Acquire(deadline)
			w.unclaim()
		}
	})
}

// exchange is one observed request: when it began and ended, relative to
// the test's base time.
// exchange: served is when the worker could start on the request (its
// turn on a pipelined connection); zero means at start. shared: an
// exclusive exchange while the worker had more requests in flight.
type exchange struct {
	start, end, served time.Duration
	shared             bool
}

func TestSlowPathStopsPipeliningForTheCooldown(t *testing.T) {
	ms := time.Millisecond
	// 50 quick requests first, so the average is low.
	warm := make([]exchange, 50)
	for i := range warm {
		warm[i] = exchange{start: time.Duration(i) * ms, end: time.Duration(i)*ms + ms}
	}
	tests := []struct {
		name   string
		then   []exchange // observed in this order after warm
		paused bool
	}{
		{"quick requests only", []exchange{{start: 60 * ms, end: 61 * ms}}, false},
		{"a hiccup below the slow bar", []exchange{{start: 60 * ms, end: 80 * ms}, {start: 61 * ms, end: 62 * ms}}, false},
		// 200 ms request begun at 60 ms; one begun after it came back
		// quickly first: a slow path.
		{"a slow path", []exchange{{start: 61 * ms, end: 62 * ms}, {start: 60 * ms, end: 260 * ms}}, true},
		// the same after waiting 10 ms for its turn on a pipelined
		// connection: still 200 ms of its own.
		{"a slow path after its turn", []exchange{{start: 61 * ms, end: 62 * ms}, {start: 60 * ms, served: 70 * ms, end: 270 * ms}}, true},
		// the machine stalled: everything in flight came back late
		// together, nothing younger finished first.
		{"a stall delays everything", []exchange{{start: 60 * ms, end: 130 * ms}, {start: 61 * ms, end: 130 * ms}, {start: 62 * ms, end: 131 * ms}}, false},
		// only requests begun before the slow one finished quickly
		{"quick requests begun earlier do not count", []exchange{{start: 59 * ms, end: 61 * ms}, {start: 60 * ms, end: 260 * ms}}, false},
		// a stall held up one pipelined connection's head: the requests
		// queued behind it came back 70 ms after they began, but within
		// 1 ms of their turn, while the other connection's younger
		// requests went on. Not a slow path.
		{"queued behind a stalled head", []exchange{{start: 62 * ms, end: 63 * ms}, {start: 60 * ms, served: 129 * ms, end: 130 * ms}, {start: 61 * ms, served: 130 * ms, end: 131 * ms}}, false},
		// a 45 ms stall hit a request 8 ms old and one begun after it
		// (53 and 46 ms): the younger is not Slow quicker.
		{"a stall hits requests of different ages", []exchange{{start: 67 * ms, end: 113 * ms}, {start: 60 * ms, end: 113 * ms}}, false},
		// a 52 ms path next to a 5 ms one: not 50 ms slower
		{"a path slower by less than the bar", []exchange{{start: 61 * ms, end: 66 * ms}, {start: 60 * ms, end: 112 * ms}}, false},
		// under load an exchange spilled over to an exclusive connection
		// spends 290 ms among 60 others while pipelined ones return
		// within a millisecond of their turn
		{"a spilled-over exchange next to pipelined ones", []exchange{{start: 61 * ms, end: 62 * ms}, {start: 60 * ms, end: 350 * ms, shared: true}}, false},
		{"a slow path among shared exchanges", []exchange{{start: 61 * ms, end: 63 * ms, shared: true}, {start: 60 * ms, end: 260 * ms, shared: true}}, true},
		// a client that took 70 ms to send its small body
		{"a slow upload", []exchange{{start: 61 * ms, end: 62 * ms}, {start: 60 * ms, served: 130 * ms, end: 131 * ms}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPool(PoolOptions{MaxWorkers: 1, Pipeline: PipelineOptions{Conns: 2, Depth: 8, MaxAge: 10 * ms, Slow: 50 * ms, SlowCooldown: time.Minute}})
			base := time.Now().UnixNano()
			at := func(d time.Duration) int64 { return base + int64(d) }
			for _, e := range append(append([]exchange{}, warm...), tt.then...) {
				served := e.served
				if served == 0 {
					served = e.start
				}
				p.observe(at(e.start), at(served), at(e.end), !e.shared)
			}
			// quick requests afterwards bring the average down again
			for i := 0; i < 50; i++ {
				s := 300*ms + time.Duration(i)*ms
				p.observe(at(s), at(s), at(s+ms), true)
			}
			if got := !p.pipelineAllowed(at(400 * ms)); got != tt.paused {
				t.Fatalf("pipelining paused = %v, want %v", got, tt.paused)
			}
			if !p.pipelineAllowed(at(400*ms + 2*time.Minute)) {
				t.Fatal("still not pipelined after the cooldown")
			}
		})
	}
}

// Pipelining follows the worker's own time per request, not the time a
// request waited in a pipeline queue or shared the worker's event loop
// with many others (a busy machine, not a slow function).
func TestPipeliningFollowsServiceTime(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name           string
		queued, served time.Duration // per exchange: wait before its turn, own time
		own            bool
		allowed        bool
	}{
		{"quick", 0, ms / 2, true, true},
		{"queued 20 ms behind quick requests", 20 * ms, ms / 2, true, true},
		{"exclusive among many in flight", 0, 20 * ms, false, true},
		{"slow function, pipelined", 0, 20 * ms, true, false},
		{"slow function, alone on its connection", 0, 20 * ms, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPool(PoolOptions{MaxWorkers: 1, Pipeline: PipelineOptions{Conns: 2, Depth: 32, MaxAge: 10 * ms, Slow: 50 * ms, SlowCooldown: time.Minute}})
			base := time.Now().UnixNano()
			var end int64
			for i := 0; i < 64; i++ {
				start := base + int64(i)*int64(ms)
				served := start + int64(tt.queued)
				end = served + int64(tt.served)
				p.observe(start, served, end, tt.own)
			}
			if got := p.pipelineAllowed(end); got != tt.allowed {
				t.Fatalf("pipelining allowed = %v, want %v (service average %v, latency average %v)",
					got, tt.allowed, time.Duration(p.service.Load()), p.Latency())
			}
		})
	}
}
