package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// Every accepted client connection is a clientConn. It adds, around the
// socket:
//
//   - the read yield (--client-read-yield). A keep-alive client sends its
//     next request only after it has read the response, some microseconds
//     after the gateway wrote it. Reading at once finds nothing (EAGAIN): the
//     handler parks and the netpoller has to wake it again, which costs a
//     syscall and two trips through the scheduler per request. So when a
//     request is done, its connection is armed to yield (runtime.Gosched)
//     before its next read: fasthttp writes the response, comes back to
//     read, the other ready handlers run meanwhile, and by the time this one
//     is back the next request has usually arrived. With nothing else ready
//     the yield returns at once, so a lone client waits no longer. Only the
//     end of a request arms it, so reads inside a request never yield.
//   - an idle write deadline (--client-write-timeout): a client that stops
//     reading makes the write fail instead of pinning the handler, and with
//     it the worker slot of a streamed response, forever.
//   - body ownership (upstream.BodyWatcher) and poisoning: a connection
//     whose request body was left unread part-way can never serve another
//     request, since the rest of the body would be parsed as one.
//   - chunk framing bound (chunkframing.go): while a chunked body streams,
//     the bytes read between two pieces of body data (a chunk-size line
//     with its extensions, line ends, trailers) are counted and bounded.
//   - the held tail of a streamed response (upstream.TailHolder): once a
//     chunked body from a worker has ended, fasthttp's flushes of its last
//     chunk and of the terminal chunk are kept and sent with the server's
//     final write (the CRLF after them), so a chunked response that arrived
//     whole leaves in one write instead of three. Nothing is held while the
//     body may still be waiting for the worker: an event is written at once.
//   - lingering close (--lingering-timeout, --lingering-time): a connection
//     closed with a request body unread half-closes, reads and discards
//     until the client has gone quiet, then closes, so the client reads its
//     413/401/404 instead of a reset on its next write.

// connSettings are shared by every clientConn of a gateway.
type connSettings struct {
	yield            bool
	writeTimeout     time.Duration
	writeResolution  int64 // nanoseconds the write deadline may lag behind
	lingeringTimeout time.Duration
	lingeringTime    time.Duration
	// readBuffer is the size of fasthttp's read buffer (--max-header-bytes);
	// maxChunkFraming bounds the chunk framing (see chunkframing.go).
	readBuffer      int
	maxChunkFraming int64
	log             zerolog.Logger
}

// Connection-level events, gateway-wide.
var (
	clientWriteTimeouts = metrics.NewCounter(`edgeway_client_write_timeouts_total`)
	lingeringCloses     = metrics.NewCounter(`edgeway_client_lingering_closes_total`)
	bodiesDiscarded     = metrics.NewCounter(`edgeway_client_bodies_discarded_total{result="kept_alive"}`)
	bodiesAbandoned     = metrics.NewCounter(`edgeway_client_bodies_discarded_total{result="closed"}`)
	poisonedRequests    = metrics.NewCounter(`edgeway_client_poisoned_requests_total`)
)

// clientListener wraps accepted connections in clientConn.
type clientListener struct {
	net.Listener
	set *connSettings
}

func (l clientListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &clientConn{Conn: c, set: l.set}, nil
}

// Flags of a clientConn.
const (
	connBodyInFlight uint32 = 1 << iota // a background writer owns the body
	connPoisoned                        // a body was left unread: serve nothing more
	connLinger                          // Close lingers
	connChunked                         // a chunked body streams: count its framing
)

// clientConn is one client connection (see the top of this file). Its
// fields are atomic: a streamed body may be read by another goroutine
// while fasthttp writes the response.
type clientConn struct {
	net.Conn
	set   *connSettings
	armed atomic.Bool
	flags atomic.Uint32
	// writeDeadline is the armed write deadline (unix nanoseconds); -1
	// once a caller set deadlines itself (a hijacked WebSocket).
	writeDeadline atomic.Int64
	closing       atomic.Bool
	// framing counts the bytes read into the read buffer since the chunked
	// body last yielded data (see chunkframing.go).
	framing atomic.Int64
	// holding and tail belong to the goroutine that serves the connection
	// (fasthttp writes and reads the response's body stream there): the
	// writes kept while a streamed response's end is held, from
	// tailBuffers, sent before the next write.
	holding bool
	tail    *[]byte
	// holdFull: the response in memory is larger than fasthttp's write
	// buffer, so its first write is that full buffer and more follows;
	// it is kept and sent with the next write in one writev.
	holdFull bool
	vec      [2][]byte
	bufs     net.Buffers
}

// serverWriteBuffer is the size of fasthttp's write buffer per connection
// (the server's default WriteBufferSize, which the gateway keeps).
const serverWriteBuffer = 4096

// tailBuffers hold the end of streamed responses. A tail that does not
// fit (fasthttp writes at most its 4 KiB buffer and one 4 KiB chunk per
// flush) is written at once.
var tailBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// HoldTail implements upstream.TailHolder: the streamed body has ended.
func (c *clientConn) HoldTail() { c.holding = true }

// ReleaseTail implements upstream.TailHolder: the stream is closed; what
// was held goes out with the next write (fasthttp's final flush).
func (c *clientConn) ReleaseTail() { c.holding = false }

// NetConn exposes the socket (as crypto/tls does), for upstream's check
// that a client waiting for its response has not hung up.
func (c *clientConn) NetConn() net.Conn { return c.Conn }

func (c *clientConn) Read(b []byte) (n int, err error) {
	defer c.recoverIO(&n, &err)
	f := c.flags.Load()
	if f&connPoisoned != 0 {
		return 0, io.EOF
	}
	if f&connChunked != 0 && len(b) <= c.set.readBuffer {
		return c.readFraming(b)
	}
	if c.armed.Load() {
		c.armed.Store(false)
		runtime.Gosched()
	}
	return c.Conn.Read(b)
}

func (c *clientConn) Write(b []byte) (n int, err error) {
	defer c.recoverIO(&n, &err)
	if c.holding || c.tail != nil {
		return c.writeTail(b)
	}
	if c.holdFull {
		c.holdFull = false
		if len(b) == serverWriteBuffer {
			// bufio flushed its full buffer in the middle of a Write:
			// the rest of that Write follows at once.
			c.holding = true
			n, err = c.writeTail(b)
			c.holding = false
			return n, err
		}
	}
	return c.write(b)
}

// holdFullBuffer arms holdFull for the response on ctx when its body is
// in memory and larger than fasthttp's write buffer (so the buffer's
// flush is certain to be followed by the rest of the body).
func holdFullBuffer(ctx *fasthttp.RequestCtx) {
	resp := &ctx.Response
	if resp.IsBodyStream() || resp.SkipBody || ctx.IsHead() || len(resp.Body()) <= serverWriteBuffer {
		return
	}
	if c := connOf(ctx); c != nil {
		c.holdFull = true
	}
}

// writeTail keeps b while the tail is held and it fits; otherwise it
// writes what was held with b, in one write when they fit one buffer.
func (c *clientConn) writeTail(b []byte) (int, error) {
	if c.tail == nil {
		c.tail = tailBuffers.Get().(*[]byte)
	}
	t := c.tail
	fits := len(*t)+len(b) <= cap(*t)
	if fits {
		*t = append(*t, b...)
		if c.holding {
			return len(b), nil
		}
	}
	c.tail, c.holding = nil, false
	var err error
	switch {
	case fits:
		if len(*t) > 0 {
			_, err = c.write(*t)
		}
	case len(*t) > 0:
		err = c.writev(*t, b)
	default:
		_, err = c.write(b)
	}
	*t = (*t)[:0]
	tailBuffers.Put(t)
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// writev writes a and then b with one system call.
func (c *clientConn) writev(a, b []byte) error {
	if c.set.writeTimeout > 0 {
		c.armWrite()
	}
	c.vec = [2][]byte{a, b}
	c.bufs = c.vec[:]
	_, err := c.bufs.WriteTo(c.Conn)
	c.vec = [2][]byte{}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.writeTimedOut()
	}
	return err
}

func (c *clientConn) write(b []byte) (n int, err error) {
	if c.set.writeTimeout > 0 {
		c.armWrite()
	}
	n, err = c.Conn.Write(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.writeTimedOut()
	}
	return n, err
}

// armWrite moves the write deadline to now + --client-write-timeout, but
// only when it moved by more than the resolution (an eighth of the
// timeout): SetWriteDeadline is a runtime timer update, not free, and most
// writes of a response happen within microseconds of each other.
func (c *clientConn) armWrite() {
	cur := c.writeDeadline.Load()
	if cur < 0 {
		return
	}
	want := time.Now().UnixNano() + int64(c.set.writeTimeout)
	if want-cur < c.set.writeResolution {
		return
	}
	if c.writeDeadline.CompareAndSwap(cur, want) {
		c.Conn.SetWriteDeadline(time.Unix(0, want))
	}
}

func (c *clientConn) writeTimedOut() {
	clientWriteTimeouts.Inc()
	c.set.log.Debug().Stringer("client", c.RemoteAddr()).Msg("client write timed out: closing the connection")
}

// SetDeadline and SetWriteDeadline hand write deadlines to the caller for
// good (fasthttp clears them when it hijacks a connection for a
// WebSocket, whose session sets its own).
func (c *clientConn) SetDeadline(t time.Time) error {
	c.writeDeadline.Store(-1)
	return c.Conn.SetDeadline(t)
}

func (c *clientConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.Store(-1)
	return c.Conn.SetWriteDeadline(t)
}

// copyBuffers serve ReadFrom. 64 KiB: a read from the worker takes what its
// socket holds, so a 64 KiB body is moved in one read and write after the
// part that came with the head, where 32 KiB took two.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// ReadFrom keeps large writes for a streamed response body: bufio.Writer
// hands it to the socket's ReadFrom when it has one, and without it wrote
// the body in buffer-sized pieces (echo of 64 KiB: 112 → 205 µs of gateway
// CPU, measured). The copy goes through Write, so each piece re-arms the
// write deadline (the socket's own ReadFrom would bypass it).
func (c *clientConn) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	n, err := io.CopyBuffer(writerOnly{c}, r, *bp)
	copyBuffers.Put(bp)
	return n, err
}

// writerOnly hides clientConn's ReadFrom from io.CopyBuffer.
type writerOnly struct{ c *clientConn }

func (w writerOnly) Write(b []byte) (int, error) { return w.c.Write(b) }

func (c *clientConn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c.Conn})
}

// BodyInFlight implements upstream.BodyWatcher: a background writer is
// still copying the request body to a worker; the gateway keeps its hands
// off the body until BodyDone.
func (c *clientConn) BodyInFlight() { c.flags.Or(connBodyInFlight) }

// BodyDone implements upstream.BodyWatcher. A body not read to its end
// poisons the connection: whatever fasthttp parses next on it may be body
// bytes, so it is refused (serve) and the close lingers.
func (c *clientConn) BodyDone(consumed bool) {
	if !consumed {
		c.flags.Or(connPoisoned | connLinger)
	}
	c.flags.And(^(connBodyInFlight | connChunked))
}

// lingerOnClose makes Close linger.
func (c *clientConn) lingerOnClose() { c.flags.Or(connLinger) }

// Close closes the connection, lingering first when a request body was left
// unread (only the first Close lingers; a concurrent one, such as the
// server's shutdown, closes at once and ends the linger).
func (c *clientConn) Close() error {
	if c.flags.Load()&connLinger != 0 && c.closing.CompareAndSwap(false, true) {
		observe.Guard(c.set.log, observe.PanicClientConn, c.linger)
	}
	return c.Conn.Close()
}

// errConnPanicked is what a read or write that panicked returns.
var errConnPanicked = errors.New("client connection: recovered from a panic")

// recoverIO is deferred by Read and Write: fasthttp calls them from its
// connection goroutines outside any handler and recovers nothing there, so
// a panic in this wrapper (chunk framing, deadlines) would end the process.
// The connection is closed and the call fails, which fasthttp handles like
// any broken connection.
func (c *clientConn) recoverIO(n *int, err *error) {
	if v := recover(); v != nil {
		observe.Recovered(c.set.log, observe.PanicClientConn, v)
		*n, *err = 0, errConnPanicked
		c.Conn.Close()
	}
}

// linger half-closes the connection (the response has been flushed, the
// client sees its end) and reads and discards until the client closes or
// stays silent for --lingering-timeout, for --lingering-time at most.
func (c *clientConn) linger() {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || c.set.lingeringTime <= 0 || cw.CloseWrite() != nil {
		return
	}
	lingeringCloses.Inc()
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	end := time.Now().Add(c.set.lingeringTime)
	for {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		d := now.Add(c.set.lingeringTimeout)
		if d.After(end) {
			d = end
		}
		if c.Conn.SetReadDeadline(d) != nil {
			return
		}
		if _, err := c.Conn.Read(*bp); err != nil {
			return
		}
	}
}

// connOf returns the request's client connection, nil if it is not a
// clientConn (unit tests).
func connOf(ctx *fasthttp.RequestCtx) *clientConn {
	c, _ := ctx.Conn().(*clientConn)
	return c
}

// armYield marks the request on ctx as done: the connection's next read
// yields first (--client-read-yield).
func armYield(ctx *fasthttp.RequestCtx) {
	if c := connOf(ctx); c != nil && c.set.yield {
		c.armed.Store(true)
	}
}
