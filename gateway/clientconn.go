package gateway

import (
	"io"
	"net"
	"runtime"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// A keep-alive client sends its next request only after it has read the
// response, some microseconds after the gateway wrote it. Reading at once
// finds nothing (EAGAIN): the handler parks and the netpoller has to wake
// it again, which costs a syscall and two trips through the scheduler per
// request. So when a request is done, its connection is armed to yield
// (runtime.Gosched) before its next read: fasthttp writes the response,
// comes back to read, the other ready handlers run meanwhile, and by the
// time this one is back the next request has usually arrived. With nothing
// else ready the yield returns at once, so a lone client waits no longer
// (--client-read-yield). Only the end of a request arms it, so reads
// inside a request (a streamed body) never yield.

// yieldListener wraps accepted connections in yieldConn.
type yieldListener struct{ net.Listener }

func (l yieldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &yieldConn{Conn: c}, nil
}

// yieldConn is a client connection that yields once before the first read
// after armYield. armed is atomic: a streamed body may still be read by
// another goroutine when the handler returns.
type yieldConn struct {
	net.Conn
	armed atomic.Bool
}

// NetConn exposes the socket (as crypto/tls does), for upstream's check
// that a client waiting for its response has not hung up.
func (c *yieldConn) NetConn() net.Conn { return c.Conn }

func (c *yieldConn) Read(b []byte) (int, error) {
	if c.armed.Load() {
		c.armed.Store(false)
		runtime.Gosched()
	}
	return c.Conn.Read(b)
}

// ReadFrom and WriteTo keep the connection's own fast paths visible through
// the wrapper: bufio.Writer hands a streamed response body to the socket's
// ReadFrom (large writes, splice) when it has one, and without it wrote the
// body in buffer-sized pieces (echo of 64 KiB: 112 → 205 µs of gateway CPU
// and twice the client's reads per request, measured).
func (c *yieldConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *yieldConn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c.Conn})
}

// armYield marks the request on ctx as done: the connection's next read
// yields first.
func armYield(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(*yieldConn); ok {
		c.armed.Store(true)
	}
}
