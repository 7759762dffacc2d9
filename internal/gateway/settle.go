package gateway

import (
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

// A request body left unread is the classic way to smuggle a request: with
// streamed request bodies fasthttp pre-reads at most a few KiB of it, and
// after the handler returns parses whatever follows on the connection as the
// next request. Every early answer (404, 401, 413, 429, 503, a preflight, an
// admin endpoint, a function that answers before reading its body) would
// leave the rest of the body to be read as a request. So, after the handler
// and before the response is written, settleBody makes sure the body has
// been read to its end, or the connection closes:
//
//   - a background writer still copying the body to a worker owns it
//     (upstream.BodyWatcher); if it stops short it poisons the connection.
//     A streamed response is left to that writer in any case: the gateway
//     never reads a body a writer might be reading;
//   - a response that already closes the connection (413 for a declared
//     length over the limit, a broken chunk, a stalled body) just lingers;
//   - otherwise what is left is read and discarded, up to --discard-body-max
//     bytes within --discard-body-timeout: at the body's end the connection
//     stays alive (a stream already at its end returns EOF at once),
//     otherwise the response carries Connection: close and the close
//     lingers (see clientconn.go).

// settleBody is called by serve for requests that declared a body.
func (g *Gateway) settleBody(ctx *fasthttp.RequestCtx) {
	c := connOf(ctx)
	if c != nil {
		f := c.flags.Load()
		if f&connPoisoned != 0 {
			ctx.Response.SetConnectionClose()
			return
		}
		if f&connBodyInFlight != 0 {
			return // the writer reports with BodyDone
		}
	}
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return // read into memory
	}
	if ctx.Response.IsBodyStream() {
		// A streamed response: upstream's body writer may still be
		// copying the request body (an echo streams it back). It says
		// so with BodyInFlight and settles with BodyDone; an upstream
		// that does not is never raced here.
		return
	}
	if ctx.Response.ConnectionClose() || ctx.Request.Header.ConnectionClose() {
		if c != nil {
			c.lingerOnClose()
		}
		return
	}
	if c == nil || !g.discard(c, stream) {
		ctx.Response.SetConnectionClose()
		if c != nil {
			c.lingerOnClose()
		}
		bodiesAbandoned.Inc()
		return
	}
}

// discard reads stream to its end within the discard bounds and reports
// whether it got there.
func (g *Gateway) discard(c *clientConn, stream io.Reader) bool {
	if g.opts.DiscardBodyTimeout <= 0 {
		return false
	}
	if c.Conn.SetReadDeadline(time.Now().Add(g.opts.DiscardBodyTimeout)) != nil {
		return false
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := stream.Read(buf)
		total += int64(n)
		if n > 0 {
			c.BodyData()
		}
		if err == io.EOF {
			if total > 0 {
				bodiesDiscarded.Inc()
			}
			return true
		}
		if err != nil || total > g.opts.DiscardBodyMax {
			return false
		}
	}
}
