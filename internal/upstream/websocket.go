package upstream

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/valyala/fasthttp"
)

// SessionOptions are the limits and the observer of one WebSocket session.
type SessionOptions struct {
	IdleTimeout  time.Duration // no traffic either way for this long ends the session (0 = never)
	CloseTimeout time.Duration // how long a close handshake the gateway starts may take
	Observer     SessionObserver
}

// SessionObserver hears what a session moves and how it ends (metrics and
// logs). Transferred is called from both directions' goroutines.
type SessionObserver interface {
	Opened()
	Transferred(in, out int)
	Closed(SessionEnd)
}

// SessionEnd describes a finished session.
type SessionEnd struct {
	Code     int    // the first close code sent by either side, or CloseAbnormal
	By       string // "client", "worker" or "gateway"; empty when nobody sent a close frame
	Duration time.Duration
	In, Out  int64 // bytes client→worker and worker→client after the handshake
	PID      int
}

// Upgrade proxies a WebSocket handshake to the worker over a connection of
// its own (never a pooled one). The caller holds a WebSocket slot on w
// (Pool.AcquireWebSocket) and a reservation in sessions; Upgrade gives both
// back unless the session starts, and then when it ends. If the function
// answers 101, the client's connection is hijacked and bytes are copied
// both ways, frames unparsed (only their headers are followed, so the
// gateway can send a close frame between two of them). Any other answer
// goes to the client unchanged.
//
// A panic during the handshake gives back both slots and closes the
// worker connection (see heldSlot); one in the session, from either
// direction, ends it: both connections are closed, the slots given back,
// and the panic counted in edgeway_panics_total{where="websocket"}.
func (w *Worker) Upgrade(ctx *fasthttp.RequestCtx, deadline time.Time, sessions *Sessions, o SessionOptions) error {
	// The handshake is a request: the usual exits give its slot back.
	w.inflight.Add(1)
	var x heldSlot
	defer x.settlePanic(w)
	err := w.upgrade(ctx, deadline, sessions, o, &x)
	x.returned = true
	return err
}

func (w *Worker) upgrade(ctx *fasthttp.RequestCtx, deadline time.Time, sessions *Sessions, o SessionOptions, x *heldSlot) error {
	upgraded := false
	defer func() {
		if !upgraded {
			w.releaseWebSocket()
			sessions.Unreserve()
		}
	}()
	c, err := w.dial()
	if err != nil {
		w.release()
		return ErrDial
	}
	x.c = &c
	nc := c.nc
	nc.SetDeadline(deadline)
	req := &ctx.Request
	injectFault(req, faultWrite)
	if err := c.send(req); err != nil {
		return w.abort(&c, err, deadline)
	}
	resp := &ctx.Response
	injectFault(req, faultRead)
	stream, err := readResponse(req, resp, c.br, 0)
	if err != nil {
		return w.fail(&c, err, deadline)
	}
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		// Refused: the function's own answer, on a connection not reused.
		if stream {
			startStream(resp, w, &c, resp.Header.ContentLength(), false, nil)
			x.handedOff = true
			return nil
		}
		w.finish(&c, false)
		return nil
	}
	nc.SetDeadline(time.Time{})
	upgraded = true
	// The hijack handler writes the 101 itself: fasthttp skips the handler
	// when writing the response fails, which would leak the session's
	// slots and the worker connection.
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(client net.Conn) {
		// fasthttp runs this on the client connection's goroutine and
		// recovers nothing: a panic here would end the process.
		defer func() {
			if v := recover(); v != nil {
				recovered(observe.PanicWebSocket, v)
			}
			closeUnderlying(client)
			nc.Close()
			w.releaseWebSocket()
			sessions.Unreserve()
		}()
		s := newSession(client, nc, c.br, w, o)
		if _, err := resp.WriteTo(client); err == nil {
			s.serve(sessions, w, o.Observer)
		}
	})
	w.release()
	return nil
}

// session is one spliced WebSocket connection.
type session struct {
	client, worker net.Conn
	workerBuf      *bufio.Reader
	pid            int
	opts           SessionOptions
	bufSize        int
	started        time.Time
	last           atomic.Int64 // unix nanos of the last bytes either way
	goingAway      atomic.Int32 // close code the gateway is ending the session with
	replyBy        atomic.Int64 // after the gateway's close frame: wait for the client's until then
	upDone         atomic.Bool  // the client→worker direction ended

	mu        sync.Mutex
	closeCode int
	closeBy   string

	in, out int64 // each written by one direction, read after both ended
}

func newSession(client, worker net.Conn, workerBuf *bufio.Reader, w *Worker, o SessionOptions) *session {
	s := &session{client: client, worker: worker, workerBuf: workerBuf, pid: w.PID, opts: o, bufSize: w.bufSize, started: time.Now()}
	s.last.Store(s.started.UnixNano())
	return s
}

// serve registers the session, runs it and reports its end; it is
// unregistered even if the observer panics.
func (s *session) serve(sessions *Sessions, w *Worker, obs SessionObserver) {
	sessions.add(s)
	defer sessions.remove(s)
	w.sessions.add(s)
	defer w.sessions.remove(s)
	obs.Opened()
	s.run()
	obs.Closed(s.end())
}

// run copies both ways until the session ends. A panic in either
// direction closes both connections, which ends the other one.
func (s *session) run() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.recoverPump()
		s.pumpUp(make([]byte, s.bufSize))
	}()
	func() {
		defer s.recoverPump()
		s.pumpDown()
	}()
	<-done
}

// recoverPump is deferred by each direction of the copy.
func (s *session) recoverPump() {
	if v := recover(); v != nil {
		recovered(observe.PanicWebSocket, v)
		closeUnderlying(s.client)
		s.worker.Close()
	}
}

// GoAway asks the session to end with code: the gateway sends the client a
// close frame at the next frame boundary and waits up to CloseTimeout for
// the client's answer.
func (s *session) GoAway(code int) {
	if !s.goingAway.CompareAndSwap(0, int32(code)) {
		return
	}
	// Bound what is left to forward, then wake the worker→client copy.
	s.client.SetWriteDeadline(time.Now().Add(s.opts.CloseTimeout))
	s.worker.SetReadDeadline(aLongTimeAgo)
}

var aLongTimeAgo = time.Unix(1, 0)

// touch records traffic for the idle timeout (no clock read without one).
func (s *session) touch() {
	if s.opts.IdleTimeout > 0 {
		s.last.Store(time.Now().UnixNano())
	}
}

func (s *session) idleFor() time.Duration {
	return time.Duration(time.Now().UnixNano() - s.last.Load())
}

// setClose records the first close frame of the session.
func (s *session) setClose(code int, by string) {
	s.mu.Lock()
	if s.closeBy == "" {
		s.closeCode, s.closeBy = code, by
	}
	s.mu.Unlock()
}

func (s *session) end() SessionEnd {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := SessionEnd{Code: s.closeCode, By: s.closeBy, Duration: time.Since(s.started), In: s.in, Out: s.out, PID: s.pid}
	if e.By == "" {
		e.Code = CloseAbnormal
	}
	return e
}

// pumpDown copies worker→client. It is the only writer to the client, so
// it is where the gateway's close frames are sent: on GoAway, on the idle
// timeout, and with 1011 when the worker's connection ends without a close
// frame (the worker died).
func (s *session) pumpDown() {
	var t frameTracker
	var awayBy time.Time // a requested close must be sent by then
	for {
		if code := int(s.goingAway.Load()); code != 0 {
			if awayBy.IsZero() {
				awayBy = time.Now().Add(s.opts.CloseTimeout)
			}
			if !t.closeSeen && t.atBoundary() {
				s.sendClose(code)
				return
			}
			// Inside a frame, or the worker's own close handshake is under
			// way: keep forwarding until then.
			s.worker.SetReadDeadline(awayBy)
		} else if s.opts.IdleTimeout > 0 {
			s.worker.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
			if s.goingAway.Load() != 0 {
				continue // raced with GoAway, whose wake-up this deadline replaced
			}
		}
		// Forward straight from the worker connection's read buffer: one
		// buffer per direction less for every open session.
		var err error
		if s.workerBuf.Buffered() == 0 {
			_, err = s.workerBuf.Peek(1)
		}
		if n := s.workerBuf.Buffered(); n > 0 {
			b, _ := s.workerBuf.Peek(n)
			s.touch()
			t.feed(b) // before forwarding, as in pumpUp
			if t.closeSeen {
				s.setClose(t.closeCode, "worker")
			}
			if _, werr := s.client.Write(b); werr != nil {
				closeUnderlying(s.client)
				return
			}
			s.workerBuf.Discard(n)
			s.out += int64(n)
			s.opts.Observer.Transferred(0, n)
		}
		switch {
		case err == nil:
		case isTimeout(err):
			if s.goingAway.Load() != 0 {
				if !awayBy.IsZero() && !time.Now().Before(awayBy) {
					closeUnderlying(s.client) // stalled inside a frame: nothing clean is left
					return
				}
				continue
			}
			if s.opts.IdleTimeout > 0 && s.idleFor() >= s.opts.IdleTimeout {
				s.GoAway(CloseGoingAway)
			}
		default:
			// The worker's side ended.
			switch {
			case s.upDone.Load() || t.closeSeen:
				closeUnderlying(s.client)
			case t.atBoundary():
				code := int(s.goingAway.Load())
				if code == 0 {
					code = CloseInternalError // no close frame: the worker died
				}
				s.sendClose(code)
			default:
				closeUnderlying(s.client) // died inside a frame
			}
			return
		}
	}
}

// closeReasons are the short texts sent with the gateway's close codes.
var closeReasons = map[int]string{CloseGoingAway: "going away", CloseInternalError: "worker failed"}

// sendClose sends the client a close frame and hands over to pumpUp, which
// waits up to CloseTimeout for the client's closing reply.
func (s *session) sendClose(code int) {
	s.setClose(code, "gateway")
	by := time.Now().Add(s.opts.CloseTimeout)
	s.client.SetWriteDeadline(by)
	if _, err := s.client.Write(closeFrame(code, closeReasons[code], false)); err != nil {
		closeUnderlying(s.client)
		return
	}
	s.worker.SetWriteDeadline(by)
	s.replyBy.Store(by.UnixNano())
	s.client.SetReadDeadline(by)
}

// pumpUp copies client→worker. When the gateway has sent its close frame it
// forwards the client's reply (so the worker learns the code too) and ends.
func (s *session) pumpUp(buf []byte) {
	var t frameTracker
	workerOK := true
	defer func() {
		s.upDone.Store(true)
		s.worker.Close() // ends pumpDown if it still reads
	}()
	for {
		if by := s.replyBy.Load(); by != 0 {
			s.client.SetReadDeadline(time.Unix(0, by))
		} else if s.opts.IdleTimeout > 0 {
			s.client.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
			if s.replyBy.Load() != 0 {
				continue
			}
		}
		n, err := s.client.Read(buf)
		if n > 0 {
			s.touch()
			// Record a close frame before forwarding it: the worker's
			// answer must not be taken for who closed first.
			t.feed(buf[:n])
			if t.closeSeen {
				s.setClose(t.closeCode, "client")
			}
			if workerOK {
				if _, werr := s.worker.Write(buf[:n]); werr != nil {
					workerOK = false // pumpDown sees the worker's end
				}
			}
			s.in += int64(n)
			s.opts.Observer.Transferred(n, 0)
			if t.closeSeen && s.replyBy.Load() != 0 {
				return // the client answered the gateway's close
			}
		}
		switch {
		case err == nil:
		case isTimeout(err):
			if by := s.replyBy.Load(); by != 0 && time.Now().UnixNano() >= by {
				return
			}
			if s.replyBy.Load() == 0 && s.opts.IdleTimeout > 0 && s.idleFor() >= s.opts.IdleTimeout {
				s.GoAway(CloseGoingAway)
			}
		default:
			return
		}
	}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// closeUnderlying closes a hijacked connection's socket (fasthttp's
// hijacked conn ignores Close; the server closes it when the handler
// returns, which is after the session).
func closeUnderlying(c net.Conn) {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		u.UnsafeConn().Close()
		return
	}
	c.Close()
}

// sessionSet is a registry of open sessions that can send them all away
// and wait for a count to reach zero.
type sessionSet struct {
	mu     sync.Mutex
	open   map[*session]struct{}
	away   int           // once set, sessions added later are sent away at once
	zeroed chan struct{} // closed when the count reaches zero while someone waits
}

func (ss *sessionSet) add(s *session) {
	ss.mu.Lock()
	if ss.open == nil {
		ss.open = map[*session]struct{}{}
	}
	ss.open[s] = struct{}{}
	away := ss.away
	ss.mu.Unlock()
	if away != 0 {
		s.GoAway(away)
	}
}

func (ss *sessionSet) remove(s *session) {
	ss.mu.Lock()
	delete(ss.open, s)
	ss.mu.Unlock()
}

// goAway ends every open session, and every later one, with code.
func (ss *sessionSet) goAway(code int) {
	ss.mu.Lock()
	ss.away = code
	open := make([]*session, 0, len(ss.open))
	for s := range ss.open {
		open = append(open, s)
	}
	ss.mu.Unlock()
	for _, s := range open {
		s.GoAway(code)
	}
}

// notifyZero wakes waitZero after the count dropped to zero.
func (ss *sessionSet) notifyZero() {
	ss.mu.Lock()
	if ss.zeroed != nil {
		close(ss.zeroed)
		ss.zeroed = nil
	}
	ss.mu.Unlock()
}

// waitZero waits until count() is zero or timeout passes, and reports
// whether it reached zero.
func (ss *sessionSet) waitZero(count func() int64, timeout time.Duration) bool {
	ss.mu.Lock()
	if count() == 0 {
		ss.mu.Unlock()
		return true
	}
	if ss.zeroed == nil {
		ss.zeroed = make(chan struct{})
	}
	ch := ss.zeroed
	ss.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return count() == 0
	}
}

// Sessions is the gateway-wide registry of WebSocket sessions: it enforces
// --max-websockets and ends them all on shutdown.
type Sessions struct {
	max      int64
	reserved atomic.Int64
	set      sessionSet
}

// NewSessions returns a registry admitting up to max sessions (0 = no cap).
func NewSessions(max int) *Sessions { return &Sessions{max: int64(max)} }

// Reserve claims room for one session before its handshake; false means
// the gateway is at --max-websockets.
func (s *Sessions) Reserve() bool {
	if n := s.reserved.Add(1); s.max > 0 && n > s.max {
		s.Unreserve()
		return false
	}
	return true
}

// Unreserve gives back a reservation.
func (s *Sessions) Unreserve() {
	if s.reserved.Add(-1) == 0 {
		s.set.notifyZero()
	}
}

func (s *Sessions) add(sess *session)    { s.set.add(sess) }
func (s *Sessions) remove(sess *session) { s.set.remove(sess) }

// GoAway closes every session with code (1001) and waits up to wait for
// them to end.
func (s *Sessions) GoAway(code int, wait time.Duration) {
	s.set.goAway(code)
	s.set.waitZero(s.reserved.Load, wait)
}
