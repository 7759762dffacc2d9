package upstream

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// BodyLimits bound a request body streamed from the client to a worker.
type BodyLimits struct {
	Max     int64         // most bytes; 0 = unlimited
	IdleGap time.Duration // longest wait for more body bytes; 0 = none
	// Whole: request and response bodies with a Content-Length of at most
	// this many bytes are read whole, then sent in one piece
	// (wholebody.go); 0 = always streamed.
	Whole int
}

// BodyProgress is implemented by the gateway's client connections: told
// each time the body stream yields data, they bound the chunk framing
// (extensions, trailers) read in between.
type BodyProgress interface {
	BodyData()
}

// Errors a streamed client body can end with.
var (
	// ErrBodyTooLarge: the body outgrew BodyLimits.Max (413).
	ErrBodyTooLarge = errors.New("upstream: request body too large")
	// ErrBodyStalled: the client sent nothing for BodyLimits.IdleGap (408).
	ErrBodyStalled = errors.New("upstream: request body stalled")
)

// errWriterStopped: the reader's side stopped the writer (see reapWriter).
var errWriterStopped = errors.New("upstream: request body writer stopped")

// uploadBuffers carry streamed request bodies from the client to a worker:
// pooled, where each upload allocated its own 32 KiB. A read takes what the
// client socket holds, up to 64 KiB, so a 64 KiB body that arrived is
// copied in one or two reads and writes instead of three.
var uploadBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// writeStreamed writes the request head and copies the client's body to
// the worker itself, so the body limit holds for chunked uploads and a
// client that stops sending for IdleGap is cut off. An unknown length is
// sent chunked. consumed reports that the client's body was read to its
// end.
func (c *conn) writeStreamed(req *fasthttp.Request, client net.Conn, lim BodyLimits, deadline time.Time) (consumed bool, err error) {
	cl := req.Header.ContentLength()
	if cl < 0 {
		req.Header.SetContentLength(-1) // Transfer-Encoding: chunked
	}
	if err := req.Header.Write(c.bw); err != nil {
		return false, err
	}
	src := req.BodyStream()
	progress, _ := client.(BodyProgress)
	bp := uploadBuffers.Get().(*[]byte)
	defer uploadBuffers.Put(bp)
	buf := *bp
	var total int64
	// The body is consumed at EOF, or once its declared length is read
	// (the EOF after it may not have been asked for yet when the writer is
	// stopped).
	consumed = cl == 0
	for !consumed {
		var readBy time.Time // the read deadline set here; zero if none
		if lim.IdleGap > 0 && client != nil {
			readBy = minTime(time.Now().Add(lim.IdleGap), deadline)
			client.SetReadDeadline(readBy)
		}
		if atomic.LoadInt32(&c.stop) == 1 {
			return false, errWriterStopped
		}
		n, rerr := src.Read(buf)
		total += int64(n)
		if n > 0 && progress != nil {
			progress.BodyData()
		}
		if lim.Max > 0 && total > lim.Max {
			return false, ErrBodyTooLarge
		}
		consumed = rerr == io.EOF || (cl >= 0 && total == int64(cl))
		if n > 0 {
			if err := c.writeBodyPart(buf[:n], cl < 0); err != nil {
				return consumed, err
			}
		}
		if rerr != nil && rerr != io.EOF {
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				// A timeout before our own deadline is reapWriter's stop.
				if readBy.IsZero() || time.Now().Before(readBy) {
					return false, errWriterStopped
				}
				return false, ErrBodyStalled
			}
			return false, rerr
		}
	}
	if cl < 0 {
		if _, err := c.bw.WriteString("0\r\n\r\n"); err != nil {
			return true, err
		}
	}
	return true, c.bw.Flush()
}

// writeBodyPart writes p, as one chunk when chunked, and flushes so the
// worker sees the body as it arrives.
func (c *conn) writeBodyPart(p []byte, chunked bool) error {
	if chunked {
		c.bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		c.bw.WriteString("\r\n")
	}
	c.bw.Write(p)
	if chunked {
		c.bw.WriteString("\r\n")
	}
	return c.bw.Flush()
}

func minTime(a, b time.Time) time.Time {
	if b.IsZero() || a.Before(b) {
		return a
	}
	return b
}
