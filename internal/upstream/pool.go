package upstream

import (
	"sync/atomic"
	"time"
)

// Snapshot is an immutable view of a function's routable state. The
// lifecycle goroutine builds a new one for every change and publishes it
// with Pool.Publish; requests only read it.
type Snapshot struct {
	Workers        []*Worker // ready workers that take new requests
	Total          int       // workers running or starting, for scale decisions
	BootFailures   uint64    // grows with every failed boot
	CrashLoopUntil time.Time // zero unless the function is cooling down
	// BootRetryAt: a boot failed and no other starts before then (zero
	// when none failed since the last success, or the backoff is over).
	BootRetryAt time.Time
	Closed      bool // the function is gone or the gateway stops
	// NoWorkerSlot: the gateway's worker budget (--max-workers-total) is
	// spent and nothing can be evicted (every worker is busy): no worker
	// will start for this function until one ends somewhere.
	NoWorkerSlot bool
	// BudgetWait: the function asked the gateway's worker budget for a
	// worker and waits for a slot (an eviction or a boot elsewhere may
	// free one): its requests wait as in the queue, bounded by maxQueue
	// and the queue timeout, not their whole deadline.
	BudgetWait bool

	changed chan struct{} // closed when a newer snapshot is published
}

// refusal is why a request waiting on s must give up now, if it must: the
// function is gone, cooling down from a crash loop, or has failed to boot
// since the wait began (bootFailures then) with no worker to fall back on.
func (s *Snapshot) refusal(bootFailures uint64) error {
	switch {
	case s.Closed:
		return ErrClosed
	case !s.CrashLoopUntil.IsZero() && time.Now().Before(s.CrashLoopUntil):
		return ErrCrashLoop
	case s.BootFailures > bootFailures && len(s.Workers) == 0:
		return ErrBoot
	case !s.BootRetryAt.IsZero() && len(s.Workers) == 0 && s.Total == 0 && time.Now().Before(s.BootRetryAt):
		// In the boot backoff with nothing running or starting: the last
		// boot failed and no other will start before BootRetryAt. Refused
		// at once (Retry-After), as nginx and Envoy answer when no
		// upstream is healthy, rather than held for the next attempt.
		return ErrBoot
	case s.NoWorkerSlot && len(s.Workers) == 0 && s.Total == 0:
		// Nothing to queue on and nothing starting: refused at once
		// rather than held until the deadline for a slot that depends on
		// another function's request ending.
		return ErrNoWorkerSlot
	}
	return nil
}

// PoolOptions are the per-function admission limits.
type PoolOptions struct {
	MaxWorkers     int           // scale-up stops here
	MaxConcurrency int           // in-flight requests per worker; 0 = unlimited
	MaxQueue       int           // requests waiting for a slot
	QueueTimeout   time.Duration // longest wait for a slot
	MaxWebSockets  int           // WebSocket sessions per worker; 0 = unlimited
	Pipeline       PipelineOptions
}

// Pool is a function's set of workers as the hot path sees it.
type Pool struct {
	snap      atomic.Pointer[Snapshot]
	rr        atomic.Uint32
	waiting   atomic.Int32 // requests in the slow path
	queued    atomic.Int32 // requests waiting for a slot on a busy worker
	latency   atomic.Int64 // moving average of request durations, nanos
	service   atomic.Int64 // moving average of the worker's own time per request, nanos (see observe)
	slowUntil atomic.Int64 // no pipelining until then (unix nanos)
	// The latest-started quick exchange seen, of each kind (see observe):
	// [0] shared the worker with more requests, [1] had it alone.
	quick [2]quickRef
	// Paths whose pipelined responses streamed: no longer pipelined.
	streamPaths streamPaths
	// Exchanges by connection kind, for status and tests.
	pipelined atomic.Uint64
	exclusive atomic.Uint64
	nudge     chan struct{}
	freed     chan struct{}
	timeouts  chan *Worker // workers that let a request time out
	opts      PoolOptions
	pipe      PipelineOptions
}

// NewPool returns a pool with an empty snapshot.
func NewPool(o PoolOptions) *Pool {
	p := &Pool{
		nudge:    make(chan struct{}, 1),
		freed:    make(chan struct{}, 1),
		timeouts: make(chan *Worker, 4),
		opts:     o,
		pipe:     o.Pipeline,
	}
	p.snap.Store(&Snapshot{changed: make(chan struct{})})
	return p
}

// Options returns the limits the pool was built with.
func (p *Pool) Options() PoolOptions { return p.opts }

// Load returns the current snapshot.
func (p *Pool) Load() *Snapshot { return p.snap.Load() }

// Publish replaces the snapshot and wakes requests waiting for a change.
// Only the owning lifecycle goroutine may call it.
func (p *Pool) Publish(s Snapshot) {
	s.changed = make(chan struct{})
	old := p.snap.Swap(&s)
	close(old.changed)
}

// observe folds an exchange that began at start and ended at now (unix
// nanos) into the function's moving average latency (weight 1/8, for
// status), and into the average service time, which decides whether its
// requests may be pipelined, and watches for slow paths. Lost updates
// under contention do not matter.
//
// served is when the worker could start on the request: its body read
// from the client and, pipelined, its turn come (Deno answers a pipelined
// request once the response before it has ended). now - served is the
// request's own time, what a request pipelined behind it would wait for;
// the time it waited in a pipeline queue or for its client's body says
// nothing about its own path. own reports that now - served was the
// worker's alone: true when pipelined, and for an exclusive connection
// only if the worker had no more requests in flight than a pipeline has
// connections (else its event loop was shared, and the wait was mostly
// the others': by Little's law about in-flight / throughput).
//
// Counted from start instead, a busy machine switched pipelining off and
// kept it off: 64 clients at 6,000 req/s average 10.7 ms (the MaxAge bar)
// of queueing alone, exclusive connections cost twice the CPU per request
// (gateway and Deno), so throughput stayed low and the average high; and
// every request queued behind a head whose goroutine the OS held up for a
// moment looked slow while the other connection's younger ones came back,
// tripping the slow-path cooldown.
func (p *Pool) observe(start, served, now int64, own bool) {
	d := now - start
	old := p.latency.Load()
	p.latency.Store(old + (d-old)/8)
	if p.pipe.Conns == 0 {
		return
	}
	s := now - served
	if own {
		old := p.service.Load()
		p.service.Store(old + (s-old)/8)
	}
	ref := &p.quick[0]
	if own {
		ref = &p.quick[1]
	}
	if s < int64(p.pipe.Slow) {
		if start > ref.start.Load() {
			ref.start.Store(start)
			ref.took.Store(s)
		}
		return
	}
	// One slow request stops pipelining for a while (the average hides a
	// mix of fast and slow paths, and a fast request pipelined behind a
	// slow one waits for it), but only if a request that began after it
	// has already come back, and at least Slow quicker: then this one was
	// slow on its own, a slow path. When the whole machine stalls (a busy
	// CPU, a VM pause) everything in flight is late together: what began
	// after it and ends first was held up by the same stall, so it is not
	// Slow quicker (a 45 ms stall makes a request that was 8 ms old come
	// back in 53 ms and one begun after it in 46: no slow path), and
	// pipelining, which is what saves CPU, stays on. An exclusive exchange
	// that shared the worker is compared with those that did too: under
	// load, a spilled-over one spends 300 ms among 60 others while a
	// pipelined one returns within a millisecond of its turn (measured
	// with two CPU hogs on the box), which says nothing about its path.
	if ref.start.Load() > start && s-ref.took.Load() >= int64(p.pipe.Slow) {
		p.slowUntil.Store(now + int64(p.pipe.SlowCooldown))
	}
}

// quickRef is a quick exchange: when it began and how long the worker
// took (unix nanos, nanos).
type quickRef struct{ start, took atomic.Int64 }

// pipelineAllowed reports whether the function's recent requests are all
// quick enough to pipeline.
func (p *Pool) pipelineAllowed(now int64) bool {
	return p.pipe.Conns > 0 && p.service.Load() < int64(p.pipe.MaxAge) && now >= p.slowUntil.Load()
}

// Exchanges reports how many requests went over pipelined and over
// exclusive worker connections.
func (p *Pool) Exchanges() (pipelined, exclusive uint64) {
	return p.pipelined.Load(), p.exclusive.Load()
}

// Latency is the moving average of the function's request durations.
func (p *Pool) Latency() time.Duration { return time.Duration(p.latency.Load()) }

// Nudges delivers a signal whenever a request found no free worker; the
// lifecycle goroutine answers by starting one if the limits allow.
func (p *Pool) Nudges() <-chan struct{} { return p.nudge }

// Timeouts delivers workers that let a request reach its deadline before
// answering; the lifecycle goroutine checks whether their event loop is
// wedged. Signals beyond the buffer are dropped (a wedged worker keeps
// timing out).
func (p *Pool) Timeouts() <-chan *Worker { return p.timeouts }

func (p *Pool) timedOut(w *Worker) {
	select {
	case p.timeouts <- w:
	default:
	}
}

// Waiting reports requests currently waiting for a worker or a slot.
func (p *Pool) Waiting() int { return int(p.waiting.Load()) }

func (p *Pool) requestWorker() {
	select {
	case p.nudge <- struct{}{}:
	default:
	}
}

func (p *Pool) slotFreed() {
	if p.waiting.Load() == 0 {
		return
	}
	select {
	case p.freed <- struct{}{}:
	default:
	}
}

// Acquire claims an in-flight slot on the least-loaded ready worker. The
// caller must hand the worker to Proxy, which gives the slot back. It waits
// for a cold start or a free slot until deadline.
func (p *Pool) Acquire(deadline time.Time) (*Worker, error) {
	s := p.snap.Load()
	if w, allBusy := p.pick(s.Workers); w != nil {
		if !w.draining.Load() {
			if allBusy && s.Total < p.opts.MaxWorkers {
				p.requestWorker()
			}
			return w, nil
		}
		// Raced with a drain: the lifecycle goroutine is about to publish a
		// snapshot without w.
		w.unclaim()
	}
	return p.acquireSlow(s, deadline)
}

// AcquireOther is Acquire for a retry after failed refused a connection:
// it first gives failed up to its exit wait to be reported dead (exited
// workers are never picked, and the lifecycle goroutine replaces them), so
// the retry lands on another worker or on the replacement; a worker that
// is still alive after that may be picked again.
func (p *Pool) AcquireOther(deadline time.Time, failed *Worker) (*Worker, error) {
	failed.waitExit(deadline)
	return p.Acquire(deadline)
}

// AcquireWebSocket claims a WebSocket slot on the least-loaded worker
// below its WebSocket cap for an upgrade. When every worker is at its cap
// it asks for another worker and waits for it until deadline; at
// maxWorkers, or when the gateway's worker budget allows no other worker
// (ErrNoWorkerSlot), it fails at once with ErrOverloaded, before the
// handshake.
func (p *Pool) AcquireWebSocket(deadline time.Time) (*Worker, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	s := p.snap.Load()
	bootFailures := s.BootFailures
	for {
		if err := s.refusal(bootFailures); err != nil {
			return nil, err
		}
		if w := p.pickWebSocket(s.Workers); w != nil {
			return w, nil
		}
		if s.Total >= p.opts.MaxWorkers && len(s.Workers) >= p.opts.MaxWorkers {
			return nil, ErrOverloaded
		}
		if s.NoWorkerSlot && s.Total == len(s.Workers) {
			// Nothing starting and the gateway's worker budget allows
			// no other worker: as at maxWorkers.
			p.requestWorker() // the manager asks the budget again
			return nil, ErrNoWorkerSlot
		}
		p.requestWorker()
		select {
		case <-s.changed:
			s = p.snap.Load()
		case <-timer.C:
			return nil, ErrTimeout
		}
	}
}

// AcquireOtherWebSocket is AcquireOther for an upgrade whose worker
// refused the connection.
func (p *Pool) AcquireOtherWebSocket(deadline time.Time, failed *Worker) (*Worker, error) {
	failed.waitExit(deadline)
	return p.AcquireWebSocket(deadline)
}

// acquireSlow waits for a worker to boot or for a slot to free up.
func (p *Pool) acquireSlow(s *Snapshot, deadline time.Time) (*Worker, error) {
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	bootFailures := s.BootFailures
	queued := false
	defer func() {
		if queued {
			p.queued.Add(-1)
		}
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		if err := s.refusal(bootFailures); err != nil {
			if err == ErrNoWorkerSlot {
				// The manager asks the budget again: a worker elsewhere
				// may have become idle, evictable, since it last did.
				p.requestWorker()
			}
			return nil, err
		}
		if w, _ := p.pick(s.Workers); w != nil {
			if !w.draining.Load() {
				return w, nil
			}
			w.unclaim()
		}
		if s.Total < p.opts.MaxWorkers {
			p.requestWorker()
		}
		if (len(s.Workers) >= p.opts.MaxWorkers || s.NoWorkerSlot || s.BudgetWait) && !queued {
			// Every worker is at maxConcurrency and no other will start
			// (maxWorkers), or a worker waits for the gateway's budget:
			// join the bounded queue.
			queued = true
			if int(p.queued.Add(1)) > p.opts.MaxQueue {
				return nil, ErrOverloaded
			}
			if qd := time.Now().Add(p.opts.QueueTimeout); qd.Before(deadline) {
				timer.Reset(time.Until(qd))
			}
		}
		select {
		case <-s.changed:
		case <-p.freed:
		case <-timer.C:
			if queued {
				return nil, ErrOverloaded
			}
			return nil, ErrTimeout
		}
		s = p.snap.Load()
	}
}
