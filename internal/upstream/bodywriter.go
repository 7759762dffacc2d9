package upstream

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/valyala/fasthttp"
)

// BodyWatcher is implemented by the gateway's client connections
// (ctx.Conn()). When Proxy returns while a streamed request body is still
// being copied to the worker by a background writer, upstream calls
// BodyInFlight(); when that writer stops it calls BodyDone(consumed),
// consumed reporting whether the client's body was read to its end.
// Between the two the gateway must not read the body; after
// BodyDone(false) the connection must not serve another request.
//
// When Proxy returns with no writer left running, the gateway settles the
// body itself. A writer that upstream stopped early was unblocked by
// setting the client connection's read deadline to the past: the gateway
// sets its own before reading the rest of the body.
type BodyWatcher interface {
	BodyInFlight()
	BodyDone(consumed bool)
}

// startWriter copies a streamed request body to the worker in the
// background while the response is read. A function may answer while the
// body is still arriving (an echo streams it back): written in turn, both
// sides would block on full socket buffers.
func (c *conn) startWriter(req *fasthttp.Request, client net.Conn, lim BodyLimits, deadline time.Time) {
	c.writing = make(chan error, 1)
	c.client = client
	c.watcher, _ = client.(BodyWatcher)
	c.inFlight, c.consumed = false, false
	atomic.StoreInt32(&c.stop, 0)
	go c.writeRequest(req, client, lim, deadline)
}

// writeRequest is the writer goroutine; its result tells the reader's side
// whether the exchange can be reused.
func (c *conn) writeRequest(req *fasthttp.Request, client net.Conn, lim BodyLimits, deadline time.Time) {
	var err error
	defer func() {
		if p := recover(); p != nil {
			recovered(observe.PanicBodyWriter, p)
			err = fmt.Errorf("upstream: request body writer panicked: %v", p)
		}
		if err != nil {
			// Unblock the reader: the worker may wait forever for the
			// rest of a body that will not come.
			c.nc.Close()
		}
		c.writing <- err
	}()
	c.consumed, err = c.writeStreamed(req, client, lim, deadline)
}

// bodyInFlight tells the client connection that the writer still reads its
// body after Proxy returns (a streamed response).
func (c *conn) bodyInFlight() {
	if c.writing != nil && c.watcher != nil {
		c.inFlight = true
		c.watcher.BodyInFlight()
	}
}

// reapWriter waits for the writer, first stopping it if it is still
// running: the response has ended or failed, so the writer must
// not outlive its use of the request (the server recycles it) nor keep
// reading a body nobody will forward. A writer blocked on the worker is
// unblocked by closing the connection, one blocked on the client by a read
// deadline in the past. It returns the writer's error and whether the
// client's body was read to its end, and calls BodyDone if it is owed.
func (c *conn) reapWriter() (err error, consumed bool) {
	select {
	case err = <-c.writing:
	default:
		// Flag first: the writer checks it after setting its own read
		// deadline, so its deadline never replaces ours unnoticed.
		atomic.StoreInt32(&c.stop, 1)
		if c.client != nil {
			c.client.SetReadDeadline(time.Now())
		}
		c.nc.Close()
		err = <-c.writing
	}
	c.writing = nil
	consumed = c.consumed
	if c.inFlight {
		c.watcher.BodyDone(consumed)
	}
	c.client, c.watcher, c.inFlight = nil, nil, false
	return err, consumed
}

// clientBodyError stops and reaps the writer of a failed exchange and
// returns why it failed if the client's body was at fault (too large,
// stalled, malformed), and nil when it succeeded, failed writing to the
// worker, or was stopped here.
func (c *conn) clientBodyError() error {
	if c.writing == nil {
		return nil
	}
	err, _ := c.reapWriter()
	var op *net.OpError
	var ne net.Error
	switch {
	case err == nil || (errors.As(err, &op) && op.Op == "write"):
		return nil
	case err == ErrBodyTooLarge:
		return err
	case atomic.LoadInt32(&c.stop) == 1 && (err == errWriterStopped || (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, net.ErrClosed)):
		return nil // our own stop, not the client's doing
	case err == ErrBodyStalled:
		return err
	default:
		return ErrClientBody
	}
}
