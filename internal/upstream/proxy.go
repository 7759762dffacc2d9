package upstream

import (
	"bufio"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Proxy sends ctx.Request to the worker and fills ctx.Response. The request
// must already be rewritten for the worker (path, forwarding headers,
// hop-by-hop headers removed). Proxy gives back the slot Acquire claimed: at
// once for a buffered response, or when the server has finished writing a
// streamed one.
//
// ErrDial means nothing reached the worker (retry elsewhere is safe);
// ErrTimeout means the deadline passed before the response head; ErrWorker
// means the worker broke the exchange.
//
// A panic inside Proxy (a bug, or a fasthttp panic on a request it cannot
// write) still gives back the slot and closes the connection it was using
// (see heldSlot.settlePanic); the panic goes on to the gateway's recover.
func (w *Worker) Proxy(ctx *fasthttp.RequestCtx, deadline time.Time, lim BodyLimits) error {
	var x heldSlot
	defer x.settlePanic(w)
	err := w.proxy(ctx, deadline, lim, &x)
	x.returned = true
	return err
}

func (w *Worker) proxy(ctx *fasthttp.RequestCtx, deadline time.Time, lim BodyLimits, x *heldSlot) error {
	start := time.Now().UnixNano()
	// served: from when on the worker alone answers for the wait (see
	// Pool.observe); a small body's upload is the client's time.
	served := start
	small := pipelineable(&ctx.Request, w.bufSize)
	if small && ctx.Request.IsBodyStream() {
		// Read a small body before anything is written, pipelined or not,
		// so a client that stalls is told apart from a worker that does.
		if err := bufferBody(&ctx.Request, w.bufSize); err != nil {
			w.release()
			return err
		}
		served = time.Now().UnixNano()
	} else if wholeRequest(&ctx.Request, lim) {
		// Read a body of known, bounded length before a worker
		// connection is taken: it leaves in one write (wholebody.go).
		if err := readWholeBody(&ctx.Request, ctx.Conn(), lim, deadline); err != nil {
			w.release()
			return err
		}
		served = time.Now().UnixNano()
	}
	if small && w.pool.pipelineAllowed(start) && !w.pool.streams(&ctx.Request) {
		if pc := w.pickPipe(start); pc != nil {
			// errNotSent: not processed by the worker; it goes on an
			// exclusive connection (or another worker, if this one died).
			x.pc = pc
			err := w.proxyPipelined(ctx, pc, start, served, deadline)
			x.pc = nil
			if err != errNotSent {
				w.pool.pipelined.Add(1)
				return err
			}
			if w.gone.Load() {
				w.release()
				return ErrDial
			}
		}
	}
	c, err := w.getConn()
	if err != nil {
		w.release()
		return err
	}
	x.c = c
	c.start, c.served = start, served
	w.pool.exclusive.Add(1)
	if err := c.nc.SetDeadline(deadline); err != nil {
		c.nc.Close()
		w.release()
		return ErrDial
	}
	req := &ctx.Request
	// The client's Connection: close is for the client connection only; the
	// worker connection stays alive.
	clientClose := req.Header.ConnectionClose()
	if clientClose {
		req.Header.ResetConnectionClose()
	}
	if streamsBody(req, w.bufSize) {
		c.startWriter(req, ctx.Conn(), lim, deadline)
	} else {
		injectFault(req, faultWrite)
		if len(req.Body()) > w.bufSize {
			err = c.sendWhole(req)
		} else {
			err = c.send(req)
		}
	}
	if clientClose {
		req.Header.SetConnectionClose()
	}
	if err != nil {
		return w.abort(c, err, deadline)
	}
	resp := &ctx.Response
	injectFault(req, faultRead)
	if err := w.awaitHead(c, ctx.Conn(), deadline); err != nil {
		c.nc.Close() // Deno aborts the request's signal
		c.clientBodyError()
		w.finish(c, false)
		return err
	}
	stream, err := readResponse(req, resp, c.br, lim.Whole)
	if err != nil {
		return w.fail(c, err, deadline)
	}
	reusable := !workerWantsClose(&resp.Header)
	resp.Header.ResetConnectionClose()
	if stream {
		startStream(resp, w, c, resp.Header.ContentLength(), reusable, ctx.Conn())
		x.handedOff = true // the stream owns the connection and the slot
		c.bodyInFlight()
		return nil
	}
	w.finish(c, reusable)
	return nil
}

// readResponse reads the response head and, when it is already buffered
// (it arrived with the head) or its Content-Length is at most whole, the
// whole body: the hot path then needs no stream. stream reports that the
// body must be streamed from br.
func readResponse(req *fasthttp.Request, resp *fasthttp.Response, br *bufio.Reader, whole int) (stream bool, err error) {
	if err := readHead(resp, br); err != nil {
		return false, err
	}
	if resp.StatusCode() == fasthttp.StatusSwitchingProtocols && !req.Header.ConnectionUpgrade() {
		// Forwarded, the 101 would make the client (or a proxy in front)
		// treat what follows on its connection as another protocol.
		return false, errUnaskedUpgrade
	}
	if req.Header.IsHead() || noBody(resp.StatusCode()) {
		resp.SkipBody = req.Header.IsHead()
		return false, nil
	}
	if n := resp.Header.ContentLength(); n >= 0 && (n <= br.Buffered() || n <= whole) {
		return false, resp.ReadBody(br, 0)
	}
	return true, nil
}

// maxInterimResponses bounds the 1xx responses skipped before the real one,
// so a broken worker cannot keep the gateway reading forever.
const maxInterimResponses = 16

// readHead reads the response head, skipping interim 1xx responses other
// than 101 Switching Protocols.
func readHead(resp *fasthttp.Response, br *bufio.Reader) error {
	for i := 0; ; i++ {
		if err := checkStatusLine(br); err != nil {
			return err
		}
		if err := resp.Header.Read(br); err != nil {
			return err
		}
		st := resp.StatusCode()
		if st < 100 || st >= 200 || st == fasthttp.StatusSwitchingProtocols {
			return nil
		}
		if i >= maxInterimResponses {
			return errTooManyInterim
		}
	}
}

// workerWantsClose reports whether the worker's response asks for its
// connection to be closed. The Connection value is left as it is: the
// gateway strips the headers it names before answering the client.
func workerWantsClose(h *fasthttp.ResponseHeader) bool {
	return h.ConnectionClose() || hasCloseToken(h.Peek(fasthttp.HeaderConnection))
}

// hasCloseToken reports a "close" token, in any case, in a Connection
// value: fasthttp only recognises the exact value "close", and a worker
// that wants its connection closed ("Connection: Close, x") must never
// have it reused (found by FuzzResponseFraming against net/http).
func hasCloseToken(v []byte) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := v[:i]
		for len(tok) > 0 && (tok[0] == ' ' || tok[0] == '\t') {
			tok = tok[1:]
		}
		for len(tok) > 0 && (tok[len(tok)-1] == ' ' || tok[len(tok)-1] == '\t') {
			tok = tok[:len(tok)-1]
		}
		if len(tok) == 5 && (tok[0]|0x20) == 'c' && (tok[1]|0x20) == 'l' && (tok[2]|0x20) == 'o' && (tok[3]|0x20) == 's' && (tok[4]|0x20) == 'e' {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

// checkStatusLine refuses a status line other than "HTTP/1.1 NNN" or
// "HTTP/1.0 NNN" with a status from 100 to 599 before fasthttp parses it:
// fasthttp takes other versions and reads a status of 000 as 200. Deno
// answers HTTP/1.1, and HTTP/1.0 to a client's HTTP/1.0 request (whose
// framing, keep-alive included, fasthttp reads as an HTTP/1.0 response).
func checkStatusLine(br *bufio.Reader) error {
	const prefix = "HTTP/1.1 "
	line, err := br.Peek(len(prefix) + 4)
	if err != nil {
		return err
	}
	if v := string(line[:len(prefix)]); v != prefix && v != "HTTP/1.0 " {
		return errBadStatusLine
	}
	st := line[len(prefix):]
	if st[0] < '1' || st[0] > '5' || st[1] < '0' || st[1] > '9' || st[2] < '0' || st[2] > '9' || (st[3] != ' ' && st[3] != '\r') {
		return errBadStatusLine
	}
	return nil
}

var (
	errBadStatusLine  = errors.New("upstream: malformed status line")
	errTooManyInterim = errors.New("upstream: too many 1xx responses")
	errUnaskedUpgrade = errors.New("upstream: 101 Switching Protocols to a request that asked for no upgrade")
)

// protocolError reports a response the worker sent whole but wrong: the
// worker is alive, so classify need not wait to learn whether it died.
func protocolError(err error) bool {
	return err == errUnaskedUpgrade || err == errTooManyInterim || err == errBadStatusLine
}

// streamsBody reports a request whose body is still arriving from the
// client or larger than one buffer.
func streamsBody(req *fasthttp.Request, bufSize int) bool {
	if !req.IsBodyStream() {
		return false
	}
	cl := req.Header.ContentLength()
	return cl < 0 || cl > bufSize
}

func (w *Worker) finish(c *conn, reusable bool) {
	now := time.Now().UnixNano()
	served := c.served
	if served < c.start { // set by an earlier exchange (a WebSocket's)
		served = c.start
	}
	w.pool.observe(c.start, served, now, w.inflight.Load() <= int32(w.pool.pipe.Conns))
	if c.writing != nil {
		// A response that ended before the body was sent leaves the
		// exchange unusable: the writer is stopped.
		err, _ := c.reapWriter()
		reusable = reusable && err == nil && atomic.LoadInt32(&c.stop) == 0
	}
	if reusable {
		w.putConn(c)
	} else {
		c.nc.Close()
	}
	w.releaseAt(now)
}

// noBody reports statuses that never carry a body.
func noBody(status int) bool {
	return status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified || (status >= 100 && status < 200)
}

// send writes the whole request and flushes it.
func (c *conn) send(req *fasthttp.Request) error {
	if err := req.Write(c.bw); err != nil {
		return err
	}
	return c.bw.Flush()
}

// abort ends an exchange whose request could not be written.
func (w *Worker) abort(c *conn, err error, deadline time.Time) error {
	c.nc.Close()
	err = w.classify(err, deadline)
	w.release()
	return err
}

// fail ends a broken exchange. The slot is given back only after classify
// has learned whether the worker is dying, so requests waiting for a slot
// do not race onto a dead worker.
func (w *Worker) fail(c *conn, err error, deadline time.Time) error {
	c.nc.Close()
	if berr := c.clientBodyError(); berr != nil {
		w.finish(c, false)
		return berr
	}
	if protocolError(err) {
		w.finish(c, false)
		return ErrWorker
	}
	err = w.classify(err, deadline)
	w.finish(c, false)
	return err
}

// classify maps a connection error to the error the gateway reports.
// fasthttp does not always keep the net.Error, so the deadline decides.
func (w *Worker) classify(err error, deadline time.Time) error {
	var ne net.Error
	if (errors.As(err, &ne) && ne.Timeout()) || !time.Now().Before(deadline) {
		w.pool.timedOut(w)
		return ErrTimeout
	}
	// The connection broke: its idle siblings are suspect too (the process
	// may be dying), so later requests dial afresh and, if the worker is
	// gone, are retried elsewhere. Then learn whether it died of its memory
	// limit (Supabase's 546) before answering.
	w.dropIdle()
	t := time.NewTimer(min(w.exitWait, time.Until(deadline)))
	select {
	case <-w.exited:
	case <-t.C:
	}
	t.Stop()
	if w.memKilled.Load() {
		return ErrMemoryLimit
	}
	return ErrWorker
}
