package upstream

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Bodies of known length up to BodyLimits.Whole are moved whole, as nginx
// buffers them, instead of streamed in pieces: a request body is read from
// the client before anything is written to the worker, and the request
// then leaves in one writev (head and body, see coalescer) with no writer
// goroutine; a response body that did not arrive with its head is read to
// its end before the client's response is written (see readResponse).
// Streamed, a 64 KiB echo cost three writes to the worker and three to the
// client, a goroutine and a failed read per request.

// wholeRequest reports a request body still to be read from the client
// whose declared length is within lim.Whole (and lim.Max).
func wholeRequest(req *fasthttp.Request, lim BodyLimits) bool {
	if !req.IsBodyStream() || lim.Whole <= 0 || req.Header.ConnectionUpgrade() {
		return false
	}
	cl := req.Header.ContentLength()
	return cl >= 0 && cl <= lim.Whole && (lim.Max <= 0 || int64(cl) <= lim.Max)
}

// wholeBody holds a request body read whole. The request uses its bytes
// in place (SetBodyRaw: a 64 KiB copy was 4 % of the gateway's CPU on
// echo64k), and it is a user value of the request, so fasthttp closes it,
// giving it back to the pool, when it resets the request after the
// response (a retry on another worker still has the body).
type wholeBody struct{ b []byte }

// Close gives the buffer back; the request it served is being reset.
func (wb *wholeBody) Close() error {
	wholeBodies.Put(wb)
	return nil
}

var wholeBodies = sync.Pool{New: func() any { return new(wholeBody) }}

// wholeBodyKey names the request's wholeBody among its user values.
const wholeBodyKey = "edgeway.upstream.wholeBody"

// readWholeBody reads the client's body (wholeRequest checked its length)
// into the request. As when it is streamed, every read waits at most
// lim.IdleGap (and not past deadline): a client that stops sending gets
// ErrBodyStalled, one that closes or sends less than it declared
// ErrClientBody.
func readWholeBody(req *fasthttp.Request, client net.Conn, lim BodyLimits, deadline time.Time) error {
	cl := req.Header.ContentLength()
	wb := wholeBodies.Get().(*wholeBody)
	if cap(wb.b) < cl {
		wb.b = make([]byte, lim.Whole)
	}
	b := wb.b[:cl]
	src := req.BodyStream()
	for n := 0; n < cl; {
		var readBy time.Time
		if lim.IdleGap > 0 && client != nil {
			readBy = minTime(time.Now().Add(lim.IdleGap), deadline)
			client.SetReadDeadline(readBy)
		}
		m, err := src.Read(b[n:])
		n += m
		if err != nil && !(err == io.EOF && n == cl) {
			wholeBodies.Put(wb)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return ErrBodyStalled
			}
			return ErrClientBody
		}
	}
	req.SetBodyRaw(b) // releases the stream
	req.SetUserValue(wholeBodyKey, wb)
	return nil
}

// sendWhole writes a request whose body is in memory and larger than the
// connection's buffer: bufio flushes its full buffer and then writes the
// rest of the body directly, and the coalescer sends the two with one
// writev.
func (c *conn) sendWhole(req *fasthttp.Request) error {
	c.cw.hold = true
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	c.cw.hold = false
	if err == nil {
		err = c.cw.flush()
	}
	c.cw.drop()
	return err
}

// coalescer sits between a worker connection's bufio.Writer and its
// socket. While hold is set it keeps the first write (a full buffer) and
// sends it with the next one in a single writev.
type coalescer struct {
	nc   net.Conn
	hold bool
	held *[]byte // from heldBuffers
	vec  [2][]byte
	bufs net.Buffers
}

// heldBuffers keep the first buffer of a request sent whole.
var heldBuffers = sync.Pool{New: func() any { return new([]byte) }}

func (w *coalescer) Write(b []byte) (int, error) {
	if w.held == nil {
		if !w.hold {
			return w.nc.Write(b)
		}
		w.held = heldBuffers.Get().(*[]byte)
		*w.held = append((*w.held)[:0], b...)
		return len(b), nil
	}
	held := len(*w.held)
	w.vec = [2][]byte{*w.held, b}
	w.bufs = w.vec[:]
	n, err := w.bufs.WriteTo(w.nc)
	w.vec = [2][]byte{}
	w.drop()
	if err != nil {
		return max(0, int(n)-held), err
	}
	return len(b), nil
}

// flush writes what is held, if anything.
func (w *coalescer) flush() error {
	if w.held == nil {
		return nil
	}
	_, err := w.nc.Write(*w.held)
	w.drop()
	return err
}

// drop gives back the held buffer.
func (w *coalescer) drop() {
	if w.held != nil {
		*w.held = (*w.held)[:0]
		heldBuffers.Put(w.held)
		w.held = nil
	}
}
