package upstream

import (
	"bufio"
	"net"
	"sync/atomic"
	"time"
)

// Worker is one Deno process as the hot path sees it: a Unix socket, a stack
// of idle keep-alive connections and atomic counters. The lifecycle package
// owns the process; a Worker is safe for concurrent use.
type Worker struct {
	inflight   atomic.Int32
	websockets atomic.Int32 // open sessions and handshakes; they count toward load
	_          [56]byte     // keep the hot counters on their own cache line

	served     atomic.Uint64
	lastActive atomic.Int64 // unix nanos of the last finished request
	gone       atomic.Bool  // the process exited: fail fast
	draining   atomic.Bool  // no new requests; signal drained at zero
	drained    chan struct{}
	drainOnce  atomicOnce
	memKilled  atomic.Bool   // set by lifecycle when the process died of its memory limit
	exited     chan struct{} // closed by MarkGone

	ID      uint64
	PID     int
	Sock    string
	Started time.Time

	// Cold is how the worker booted for a waiting request (zero when it
	// did not); set by lifecycle before the worker is published, handed
	// once to the first request it answers (TakeColdStart).
	Cold      ColdStart
	coldTaken atomic.Bool

	pool        *Pool
	sessions    sessionSet
	idle        chan *conn
	pipes       []atomic.Pointer[pconn]
	dialTimeout time.Duration
	bufSize     int
	exitWait    time.Duration
	hangupCheck time.Duration
	sendAbort   func(seq uint64) // nil: pipelined requests are not watched (pipeabort.go)
	seq         atomic.Uint64
}

// WorkerOptions sizes a worker's connection pool.
type WorkerOptions struct {
	MaxIdleConns int           // idle keep-alive connections kept
	DialTimeout  time.Duration // connect limit
	BufferSize   int           // bufio size per connection; caps response header size
	ExitWait     time.Duration // how long a failed request waits to learn why the worker died
	HangupCheck  time.Duration // how often a request waiting for its response head checks its client (0 = never; see hangup.go)
	// Abort sends the worker "abort <seq>" for a pipelined request whose
	// client hung up (see pipeabort.go); nil = never.
	Abort func(seq uint64)
}

// NewWorker describes a ready worker listening on sock. It is not routed to
// until the lifecycle goroutine publishes it in a Snapshot of p.
func NewWorker(p *Pool, id uint64, pid int, sock string, o WorkerOptions) *Worker {
	w := &Worker{
		ID:          id,
		PID:         pid,
		Sock:        sock,
		Started:     time.Now(),
		pool:        p,
		idle:        make(chan *conn, o.MaxIdleConns),
		dialTimeout: o.DialTimeout,
		bufSize:     o.BufferSize,
		drained:     make(chan struct{}),
		exited:      make(chan struct{}),
		exitWait:    o.ExitWait,
		hangupCheck: o.HangupCheck,
		pipes:       make([]atomic.Pointer[pconn], p.pipe.Conns),
	}
	w.lastActive.Store(w.Started.UnixNano())
	if o.Abort != nil && o.HangupCheck > 0 && len(w.pipes) > 0 {
		w.sendAbort = o.Abort
		go w.watchPipes()
	}
	return w
}

// InFlight is the number of requests the worker holds right now.
func (w *Worker) InFlight() int { return int(w.inflight.Load()) }

// Served is the number of requests the worker has finished.
func (w *Worker) Served() uint64 { return w.served.Load() }

// LastActive is when the worker last finished a request.
func (w *Worker) LastActive() time.Time { return time.Unix(0, w.lastActive.Load()) }

// Drain stops new requests from being proxied to w (the lifecycle goroutine
// also removes it from the snapshot) and returns a channel that is closed
// once nothing is in flight.
func (w *Worker) Drain() <-chan struct{} {
	w.draining.Store(true)
	if w.inflight.Load() == 0 {
		w.drainOnce.do(func() { close(w.drained) })
	}
	return w.drained
}

// MarkGone records that the process exited and closes idle connections.
// memoryLimit says whether it died of its V8 heap limit, so requests that
// were in flight are answered with WORKER_LIMIT.
func (w *Worker) MarkGone(memoryLimit bool) {
	w.memKilled.Store(memoryLimit)
	if w.gone.CompareAndSwap(false, true) {
		close(w.exited)
	}
	w.closePipes()
	w.dropIdle()
}

// waitExit gives a worker that refused a connection up to its exit wait to
// be reported dead.
func (w *Worker) waitExit(deadline time.Time) {
	if w.gone.Load() {
		return
	}
	t := time.NewTimer(min(w.exitWait, time.Until(deadline)))
	select {
	case <-w.exited:
	case <-t.C:
	}
	t.Stop()
}

// dropIdle closes every idle keep-alive connection.
func (w *Worker) dropIdle() {
	for {
		select {
		case c := <-w.idle:
			c.nc.Close()
		default:
			return
		}
	}
}

// tryClaim takes one in-flight slot if the worker is below limit (0 = none).
func (w *Worker) tryClaim(limit int32) bool {
	for {
		n := w.inflight.Load()
		if limit > 0 && n >= limit {
			return false
		}
		if w.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// unclaim gives back a slot that was never used.
func (w *Worker) unclaim() {
	if w.inflight.Add(-1) == 0 && w.draining.Load() {
		w.drainOnce.do(func() { close(w.drained) })
	}
}

// release gives back a slot taken by Acquire.
func (w *Worker) release() { w.releaseAt(time.Now().UnixNano()) }

// releaseAt is release for a caller that has just read the clock (now, in
// unix nanos): one read less per request.
func (w *Worker) releaseAt(now int64) {
	w.served.Add(1)
	w.lastActive.Store(now)
	if w.inflight.Add(-1) == 0 && w.draining.Load() {
		w.drainOnce.do(func() { close(w.drained) })
	}
	w.pool.slotFreed()
}

// WebSockets is the number of WebSocket sessions open on the worker
// (handshakes included).
func (w *Worker) WebSockets() int { return int(w.websockets.Load()) }

// tryClaimWebSocket takes a WebSocket slot if the worker is below limit
// (0 = none).
func (w *Worker) tryClaimWebSocket(limit int32) bool {
	for {
		n := w.websockets.Load()
		if limit > 0 && n >= limit {
			return false
		}
		if w.websockets.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// releaseWebSocket gives back a slot taken by Pool.AcquireWebSocket.
func (w *Worker) releaseWebSocket() {
	w.lastActive.Store(time.Now().UnixNano())
	if w.websockets.Add(-1) == 0 {
		w.sessions.notifyZero()
	}
}

func (w *Worker) webSocketCount() int64 { return int64(w.websockets.Load()) }

// WaitWebSockets waits up to timeout for the worker's WebSocket sessions
// to end by themselves and reports whether they did.
func (w *Worker) WaitWebSockets(timeout time.Duration) bool {
	return w.sessions.waitZero(w.webSocketCount, timeout)
}

// CloseWebSockets ends the worker's sessions (and any still in their
// handshake) with close code, waiting up to wait for them to finish.
func (w *Worker) CloseWebSockets(code int, wait time.Duration) bool {
	w.sessions.goAway(code)
	return w.sessions.waitZero(w.webSocketCount, wait)
}

// conn is one keep-alive connection to a worker.
type conn struct {
	nc      net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	cw      *coalescer // under bw: sendWhole's single writev
	writing chan error // non-nil while a request body is written concurrently
	start   int64      // when the current exchange began (unix nanos)
	served  int64      // when its request was in the worker's hands (see Pool.observe)

	// Set for the exchange whose body the writer copies (see bodywriter.go).
	client   net.Conn    // the client connection the body is read from
	watcher  BodyWatcher // client's BodyWatcher, nil if it has none
	inFlight bool        // BodyInFlight was called: BodyDone is owed
	stop     int32       // 1: the reader's side stopped the writer (atomic)
	consumed bool        // the writer read the client's body to its end
}

func (w *Worker) getConn() (*conn, error) {
	select {
	case c := <-w.idle:
		return c, nil
	default:
	}
	if w.gone.Load() {
		return nil, ErrDial
	}
	c, err := w.dial()
	if err != nil {
		return nil, ErrDial
	}
	return &c, nil
}

func (w *Worker) dial() (conn, error) {
	nc, err := net.DialTimeout("unix", w.Sock, w.dialTimeout)
	if err != nil {
		return conn{}, err
	}
	cw := &coalescer{nc: nc}
	return conn{nc: nc, br: bufio.NewReaderSize(nc, w.bufSize), bw: bufio.NewWriterSize(cw, w.bufSize), cw: cw}, nil
}

// putConn returns a healthy connection to the idle stack, or closes it.
func (w *Worker) putConn(c *conn) {
	if w.gone.Load() || c.br.Buffered() > 0 {
		c.nc.Close()
		return
	}
	select {
	case w.idle <- c:
	default:
		c.nc.Close()
	}
}

// atomicOnce is a sync.Once that can live next to atomics without copying.
type atomicOnce struct{ done atomic.Bool }

func (o *atomicOnce) do(f func()) {
	if o.done.CompareAndSwap(false, true) {
		f()
	}
}

// ColdStart is a worker's boot for a waiting request: its duration and
// source ("pool": a pre-booted worker; "spawn": a fresh one).
type ColdStart struct {
	Duration time.Duration
	Source   string
	// Answered, when not nil, is closed when the cold start is taken: the
	// prewarm pool holds its refill's boot until then.
	Answered chan struct{}
}

// TakeColdStart returns the worker's cold start the first time it is
// called, and the zero value after (and for a worker that was not
// cold-started).
func (w *Worker) TakeColdStart() ColdStart {
	if w.Cold.Source == "" || w.coldTaken.Load() || !w.coldTaken.CompareAndSwap(false, true) {
		return ColdStart{}
	}
	if w.Cold.Answered != nil {
		close(w.Cold.Answered)
	}
	return w.Cold
}
