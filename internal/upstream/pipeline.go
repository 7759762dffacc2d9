package upstream

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Pipelining sends several requests on one keep-alive connection before
// their responses arrive. Handlers write under a mutex, yield, and the
// first one back flushes, so a burst leaves in one write and a lone request
// is never delayed. Responses come back in order: each handler
// reads its own response when its turn comes (a FIFO of pooled calls), so no
// extra goroutine or copy sits between the worker and the client.
//
// Head-of-line blocking is avoided by admission: a request is pipelined only
// for a function whose recent latency is below PipelineMaxAge, and only
// behind outstanding requests younger than that, on the worker's pipelined
// connection whose oldest outstanding request is youngest. Everything else
// (bodies, slow functions, busy pipelines) takes an exclusive connection.

// PipelineOptions tunes pipelining; the zero value turns it off.
type PipelineOptions struct {
	Conns        int           // pipelined connections per worker (0 = off)
	Depth        int           // most requests outstanding per connection
	MaxAge       time.Duration // never pipeline behind a request older than this
	Slow         time.Duration // a request this slow marks the function as having slow paths...
	SlowCooldown time.Duration // ...and stops pipelining it for this long
}

// errNotSent: the pipelined connection broke before the request was
// written, or the request is known not to have been processed: it can go
// elsewhere.
var errNotSent = errors.New("upstream: request not sent")

type pconn struct {
	conn
	wmu       sync.Mutex   // write order == read order
	unflushed int          // requests written to bw and not yet flushed (under wmu)
	depth     atomic.Int32 // places claimed by pickPipe, released by finishPipe
	// readDeadline is the read deadline set on the connection (unix nanos),
	// written only by the call whose turn it is.
	readDeadline int64
	// writeDeadline is the write deadline set on the connection (unix
	// nanos), under wmu: a worker that stops reading must not keep a writer
	// blocked in a flush, holding wmu, forever.
	writeDeadline int64
	oldest        atomic.Int64 // write time (unix nanos) of the head call; 0 when empty
	broken        atomic.Bool  // no more writes: failed, or the worker said close
	failed        atomic.Bool  // closed, and every queued call woken (see fail)
	// serverClose: a response carried Connection: close, so the worker
	// processed no request written after it (RFC 9112 §9.6).
	serverClose atomic.Bool
	// streaming: the head call's response is a stream; nothing more
	// joins the connection until it ends.
	streaming atomic.Bool

	qmu        sync.Mutex
	head, tail *call
}

// call is one request's place in a pipelined connection's FIFO.
type call struct {
	turn       chan struct{} // signalled when this call may read its response
	next       *call
	written    int64 // when its exchange began (unix nanos)
	served     int64 // when the worker could start on it: body read, turn come
	timer      *time.Timer
	idempotent bool        // the request may run twice (see evictQueued)
	evicted    atomic.Bool // woken to go elsewhere (see evictQueued)
	// client and seq identify the request for an abort (pipeabort.go);
	// client is nil when it is not watched. Both are under qmu once the
	// call is pushed.
	client   net.Conn
	seq      uint64
	answered atomic.Bool // its response head was read (or failed): no abort
}

var callPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &call{turn: make(chan struct{}, 1), timer: t}
}}

// pipelineable reports whether req can share a connection: no protocol
// switch, and a body of at most max bytes with a Content-Length (read into
// memory by bufferBody before it is written, so writing never waits on the
// client while others wait behind it).
func pipelineable(req *fasthttp.Request, max int) bool {
	if req.Header.ConnectionUpgrade() {
		return false
	}
	if req.IsBodyStream() {
		cl := req.Header.ContentLength()
		return cl >= 0 && cl <= max
	}
	return len(req.Body()) <= max
}

// smallBodies are scratch buffers for bufferBody.
var smallBodies = sync.Pool{New: func() any { return new([]byte) }}

// bufferBody reads a small streamed body (pipelineable checked its size)
// into the request, so the request can be written in one piece. The
// client connection's read deadline was set when the header arrived (see
// the gateway's headerReceived): a body that stalls gets ErrBodyStalled.
func bufferBody(req *fasthttp.Request, max int) error {
	if !req.IsBodyStream() {
		return nil
	}
	bp := smallBodies.Get().(*[]byte)
	defer smallBodies.Put(bp)
	if cap(*bp) < max {
		*bp = make([]byte, max)
	}
	b := (*bp)[:req.Header.ContentLength()]
	if _, err := io.ReadFull(req.BodyStream(), b); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ErrBodyStalled
		}
		return ErrClientBody
	}
	req.SetBody(b) // copies, and releases the stream
	return nil
}

// pickPipe claims a place on a usable pipelined connection: an idle one at
// once (CAS 0→1, so two requests never both take it), a fresh one dialed
// into an empty or broken slot, else, among those below Depth whose oldest
// outstanding request is younger than MaxAge, the one whose oldest request
// is youngest (fewest in flight on a tie). The age of the head is what a
// request queued behind it risks: a connection whose head is older than its
// peers' may be holding a slow request, however few share it. It returns
// nil when none qualifies; the caller then uses an exclusive connection.
func (w *Worker) pickPipe(now int64) *pconn {
	o := w.pool.pipe
	maxAge := int64(o.MaxAge)
	for attempt := 0; attempt < 2; attempt++ {
		var best *pconn
		var bestDepth int32
		var bestOldest int64
		for i := range w.pipes {
			pc := w.pipes[i].Load()
			if pc == nil || pc.broken.Load() {
				if fresh := w.dialPipe(i, pc); fresh != nil {
					return fresh
				}
				continue
			}
			d := pc.depth.Load()
			if d == 0 && pc.depth.CompareAndSwap(0, 1) {
				return pc
			}
			if d <= 0 || d >= int32(o.Depth) || pc.streaming.Load() {
				continue
			}
			old := pc.oldest.Load()
			if old == 0 || now-old >= maxAge {
				continue
			}
			if best == nil || old > bestOldest || (old == bestOldest && d < bestDepth) {
				best, bestDepth, bestOldest = pc, d, old
			}
		}
		if best == nil {
			return nil
		}
		if best.depth.CompareAndSwap(bestDepth, bestDepth+1) {
			return best
		}
	}
	return nil
}

// dialPipe installs a new connection, already claimed by the caller, in
// slot i (replacing old). It returns nil if the dial fails or another
// request filled the slot first.
func (w *Worker) dialPipe(i int, old *pconn) *pconn {
	if w.gone.Load() {
		return nil
	}
	c, err := w.dial()
	if err != nil {
		return nil
	}
	pc := &pconn{conn: c}
	pc.depth.Store(1)
	if !w.pipes[i].CompareAndSwap(old, pc) {
		c.nc.Close()
		return nil
	}
	return pc
}

// proxyPipelined sends the request on pc and reads its response in turn.
func (w *Worker) proxyPipelined(ctx *fasthttp.RequestCtx, pc *pconn, start, served int64, deadline time.Time) error {
	req := &ctx.Request
	cl := w.enqueueAndWrite(pc, req, ctx.Conn(), start, served, deadline)
	if cl == nil {
		pc.depth.Add(-1) // the place claimed by pickPipe
		return errNotSent
	}
	if !w.awaitTurn(pc, cl, deadline) {
		// Queued behind a response that never came (or a stream that
		// never ends): the worker may be wedged, and when every request
		// to it waits here none would reach classify to say so.
		w.pool.timedOut(w)
		pc.fail()
		w.finishPipe(pc, cl)
		return ErrTimeout
	}
	if cl.evicted.Load() {
		// Stays in the FIFO (its response would come after the stream);
		// the connection is closed when the stream ends.
		return errNotSent
	}
	if pc.broken.Load() {
		return w.collateral(req, pc, cl)
	}
	if err := pc.setReadDeadline(deadline); err != nil {
		pc.fail()
		w.finishPipe(pc, cl)
		return ErrWorker
	}
	resp := &ctx.Response
	injectFault(req, faultRead)
	stream, err := readResponse(req, resp, pc.br, 0)
	cl.answered.Store(true)
	if err != nil {
		return w.failPipe(pc, cl, err, deadline)
	}
	closing := workerWantsClose(&resp.Header)
	if closing {
		// No more writes; this response still reads fine, and what was
		// written after it was not processed: it goes elsewhere.
		pc.serverClose.Store(true)
		pc.broken.Store(true)
		resp.Header.ResetConnectionClose()
	}
	if stream {
		retire := closing
		if resp.Header.ContentLength() < 0 {
			// An unknown length: the response is built from a stream and
			// may last. What is queued behind it waits for its end.
			w.pool.streamPaths.add(requestPath(req))
			pc.streaming.Store(true)
			retire = retire || pc.evictQueued(cl)
		}
		startPipeStream(resp, w, pc, cl, resp.Header.ContentLength(), !retire, ctx.Conn())
		return nil
	}
	if closing {
		pc.fail()
	}
	w.finishPipe(pc, cl)
	return nil
}

// collateral ends a call whose turn came on a connection that another
// call broke (or that the worker closed after an earlier response): its
// own request may or may not have been processed. It goes to another
// connection (errNotSent) if it certainly was not processed (the worker
// said close before it), or if running it twice is harmless (GET, HEAD,
// OPTIONS); otherwise it fails with ErrCollateral, which the gateway does
// not count against the function's circuit breaker: the failure belongs
// to another request. The worker slot is kept for the retry.
func (w *Worker) collateral(req *fasthttp.Request, pc *pconn, cl *call) error {
	pc.fail()
	w.leavePipe(pc, cl)
	if pc.serverClose.Load() || idempotent(req) {
		return errNotSent
	}
	w.release()
	return ErrCollateral
}

// evictQueued sends the calls queued behind head (whose response turned
// out to stream) to other connections, if they are all idempotent: Deno
// does not dispatch them before the stream ends, and the connection is
// closed when it ends (the caller makes the stream unreusable), so they
// normally never run here, and running twice would be harmless. A queue
// holding a request that must not run twice is left to wait for the
// stream, as before. It reports whether calls were evicted; the
// connection then takes no more writes.
func (pc *pconn) evictQueued(head *call) bool {
	pc.qmu.Lock()
	defer pc.qmu.Unlock()
	if pc.head != head || head.next == nil {
		return false
	}
	for c := head.next; c != nil; c = c.next {
		if !c.idempotent {
			return false
		}
	}
	pc.broken.Store(true)
	for c := head.next; c != nil; c = c.next {
		c.evicted.Store(true)
		select {
		case c.turn <- struct{}{}:
		default:
		}
	}
	return true
}

// idempotent reports a request that may be sent twice (RFC 9110 §9.2.2;
// PUT and DELETE are left out: functions rarely honour it).
func idempotent(req *fasthttp.Request) bool {
	return req.Header.IsGet() || req.Header.IsHead() || req.Header.IsOptions()
}

// failPipe ends a broken pipelined exchange: the connection fails for
// every call on it, and the slot is given back once classify has learned
// whether the worker is dying (see fail).
func (w *Worker) failPipe(pc *pconn, cl *call, err error, deadline time.Time) error {
	pc.fail()
	if protocolError(err) {
		err = ErrWorker
	} else {
		err = w.classify(err, deadline)
	}
	w.finishPipe(pc, cl)
	return err
}

// enqueueAndWrite writes req on pc and appends its call to the FIFO, in the
// same critical section so write order is read order. It returns nil when
// the connection broke before anything was written.
//
// The flush comes after a yield: handlers that are ready to run (clients
// whose requests arrived together) add theirs to the buffer first, and the
// first handler back flushes them all in one write. With one P handlers run
// one after another, so without the yield every request would pay its own
// write syscall; when nothing else is runnable the yield returns at once,
// so a lone request is not delayed.
func (w *Worker) enqueueAndWrite(pc *pconn, req *fasthttp.Request, client net.Conn, start, served int64, deadline time.Time) *call {
	pc.wmu.Lock()
	if pc.broken.Load() {
		pc.wmu.Unlock()
		return nil
	}
	if err := pc.setWriteDeadlineLocked(deadline); err != nil {
		pc.wmu.Unlock()
		pc.fail()
		return nil
	}
	cl := callPool.Get().(*call)
	cl.written, cl.served = start, served
	cl.idempotent = idempotent(req)
	cl.evicted.Store(false)
	w.markForAbort(cl, req, client)
	err := pc.writeLocked(req, cl)
	if err != nil {
		pc.fail()
		return cl
	}
	runtime.Gosched()
	if err := pc.flushPending(); err != nil {
		pc.fail()
	}
	return cl
}

// writeLocked writes req into pc's buffer and queues cl, with wmu held
// (locked by the caller, unlocked here, by a defer: a panic in the write
// must not leave the mutex held, every later writer would wait forever).
func (pc *pconn) writeLocked(req *fasthttp.Request, cl *call) error {
	defer pc.wmu.Unlock()
	clientClose := req.Header.ConnectionClose()
	if clientClose {
		req.Header.ResetConnectionClose()
	}
	injectFault(req, faultWrite)
	err := req.Write(pc.bw)
	if clientClose {
		req.Header.SetConnectionClose()
	}
	pc.push(cl)
	if err == nil {
		pc.unflushed++
	}
	return err
}

// flushPending flushes what writers left in the buffer, unless another
// call's flush already did.
func (pc *pconn) flushPending() error {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	if pc.unflushed == 0 {
		return nil
	}
	pc.unflushed = 0
	return pc.bw.Flush()
}

// push appends cl (its place was counted in depth by pickPipe); a call that
// finds the FIFO empty reads at once.
func (pc *pconn) push(cl *call) {
	pc.qmu.Lock()
	if pc.tail == nil {
		pc.head, pc.tail = cl, cl
		pc.oldest.Store(cl.written)
		cl.turn <- struct{}{}
	} else {
		pc.tail.next = cl
		pc.tail = cl
	}
	pc.qmu.Unlock()
}

// awaitTurn waits until cl is at the head of the FIFO or the deadline.
func (w *Worker) awaitTurn(pc *pconn, cl *call, deadline time.Time) bool {
	select {
	case <-cl.turn:
		return true
	default:
	}
	cl.timer.Reset(time.Until(deadline))
	defer cl.timer.Stop()
	select {
	case <-cl.turn:
		// The worker starts on a pipelined request when the response
		// before it has ended: the wait so far was the queue's.
		cl.served = time.Now().UnixNano()
		return true
	case <-cl.timer.C:
		return false
	}
}

// finishPipe removes cl from the head of the FIFO, hands the turn to the
// next call and gives back the worker slot.
func (w *Worker) finishPipe(pc *pconn, cl *call) {
	now := time.Now().UnixNano()
	w.pool.observe(cl.written, cl.served, now, true)
	w.leavePipe(pc, cl)
	w.releaseAt(now)
}

// leavePipe removes cl from the head of the FIFO and hands the turn to the
// next call.
func (w *Worker) leavePipe(pc *pconn, cl *call) {
	pc.qmu.Lock()
	if pc.head == cl {
		pc.streaming.Store(false)
		pc.head = cl.next
		if pc.head == nil {
			pc.tail = nil
			pc.oldest.Store(0)
		} else {
			pc.oldest.Store(pc.head.written)
			pc.head.turn <- struct{}{}
		}
		cl.next = nil
		cl.client = nil
		pc.qmu.Unlock()
		pc.depth.Add(-1)
		callPool.Put(cl)
	} else {
		// The FIFO was abandoned by fail: the call may still hold a stale
		// turn token, so it is left to the garbage collector, not the pool.
		pc.qmu.Unlock()
		pc.depth.Add(-1)
	}
}

// deadlineResolution is the precision of a pipelined connection's read
// deadline. Calls on the connection take turns, each with a deadline a
// little later than the last; rounding them up to the millisecond (the
// precision of Go's timers anyway) lets most calls keep the deadline that
// is already set instead of resetting a runtime timer per request.
const deadlineResolution = time.Millisecond

// setReadDeadline sets the connection's read deadline to d rounded up to
// deadlineResolution, unless that is what is already set. Only the call
// whose turn it is reads, so no lock is needed.
func (pc *pconn) setReadDeadline(d time.Time) error {
	r := d.Add(deadlineResolution - 1).Truncate(deadlineResolution).UnixNano()
	if r == pc.readDeadline {
		return nil
	}
	pc.readDeadline = r
	return pc.nc.SetReadDeadline(time.Unix(0, r))
}

// writeDeadlineResolution is the precision of a pipelined connection's
// write deadline: a write is bounded by its call's deadline rounded up to
// it, so the runtime timer is reset about once per second per connection,
// not per request.
const writeDeadlineResolution = time.Second

// setWriteDeadlineLocked sets the connection's write deadline to d rounded
// up to writeDeadlineResolution, unless a later one is already set (a
// flush writes other calls' requests too; the latest deadline covers
// them). wmu is held.
func (pc *pconn) setWriteDeadlineLocked(d time.Time) error {
	r := d.Add(writeDeadlineResolution - 1).Truncate(writeDeadlineResolution).UnixNano()
	if r <= pc.writeDeadline {
		return nil
	}
	pc.writeDeadline = r
	return pc.nc.SetWriteDeadline(time.Unix(0, r))
}

// fail marks the connection unusable, closes it and wakes every queued
// call: their responses can no longer be read, and each fails at once.
func (pc *pconn) fail() {
	if !pc.failed.CompareAndSwap(false, true) {
		return
	}
	pc.broken.Store(true)
	pc.nc.Close()
	pc.qmu.Lock()
	for c := pc.head; c != nil; c = c.next {
		select {
		case c.turn <- struct{}{}:
		default:
		}
	}
	pc.head, pc.tail = nil, nil
	pc.oldest.Store(0)
	pc.qmu.Unlock()
}

func (w *Worker) closePipes() {
	for i := range w.pipes {
		if pc := w.pipes[i].Load(); pc != nil {
			pc.fail()
		}
	}
}
