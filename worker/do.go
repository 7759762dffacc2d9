package worker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"edgeway.dev/edgeway/internal/upstream"

	"github.com/valyala/fasthttp"
)

// defaultHost is the Host of a request that names none: Deno needs one to
// build req.url.
const defaultHost = "localhost"

// Do sends req to the worker and fills resp, as fasthttp.Client.Do does;
// the exchange is bounded by Options.RequestTimeout (see DoDeadline). req
// is not modified. Its URI's path and query are sent; its Host header (or
// the URI's host, or "localhost") becomes the function's req.url host. A
// request body set with SetBodyStream is streamed (chunked when its size
// is unknown) while the response is read, and closed, if it is an
// io.Closer, when the exchange ends.
//
// A response body the worker had sent with its head is in resp.Body();
// a longer one is left as resp.BodyStream() and holds the worker
// connection until it is read: resp.Body() reads and closes it, and so do
// resp.CloseBodyStream, resp.Reset and fasthttp.ReleaseResponse. It must
// be read within the same deadline.
//
// Errors wrap ErrTimeout, ErrBroken, ErrRequestBody, ErrUpgrade, or the
// worker's end (ErrClosed, ErrExited, ErrMemoryLimit).
func (w *Worker) Do(req *fasthttp.Request, resp *fasthttp.Response) error {
	return w.DoDeadline(req, resp, time.Now().Add(w.timeout))
}

// DoDeadline is Do with the exchange bounded by deadline instead of
// Options.RequestTimeout.
func (w *Worker) DoDeadline(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	ctx := newExchange(bodyCloser(req.BodyStream()))
	req.CopyTo(&ctx.Request)
	if req.IsBodyStream() {
		ctx.Request.SetBodyStream(req.BodyStream(), req.Header.ContentLength())
	}
	if err := w.exchange(ctx, deadline); err != nil {
		return err
	}
	ctx.Response.Header.CopyTo(&resp.Header)
	if stream := ctx.Response.BodyStream(); stream != nil {
		resp.SetBodyStream(stream, ctx.Response.Header.ContentLength())
	} else {
		resp.SetBody(ctx.Response.Body())
	}
	resp.SkipBody = ctx.Response.SkipBody
	return nil
}

// newExchange is the fasthttp.RequestCtx the upstream client works on,
// with a stand-in for the client connection whose read deadline stops a
// streamed request body (see requestBody).
func newExchange(body io.Closer) *fasthttp.RequestCtx {
	ctx := new(fasthttp.RequestCtx)
	ctx.Init2(&requestBody{body: body}, nil, true)
	return ctx
}

// exchange proxies ctx.Request to the worker: one slot of its pool, the
// upstream client's framing checks and connection reuse. A panic in it is
// returned as an error: the slot and connection are given back by
// upstream's own settle.
func (w *Worker) exchange(ctx *fasthttp.RequestCtx, deadline time.Time) (err error) {
	defer func() {
		if v := recover(); v != nil {
			w.failures.Add(1)
			err = fmt.Errorf("worker: internal error: %v", v)
		}
	}()
	if err := w.refusal(); err != nil {
		w.failures.Add(1)
		return err
	}
	req := &ctx.Request
	if req.Header.ConnectionUpgrade() {
		w.failures.Add(1)
		return ErrUpgrade
	}
	if len(req.Header.Host()) == 0 {
		if host := req.URI().Host(); len(host) > 0 {
			req.Header.SetHostBytes(host)
		} else {
			req.Header.SetHost(defaultHost)
		}
	}
	// The body is streamed at once: a 100 Continue would only get in the
	// way of reading the response head.
	req.Header.Del("Expect")
	// The Host header as set: fasthttp would otherwise put a parsed URI's
	// (empty) host over it.
	req.UseHostHeader = true
	uw, err := w.single.Pool().Acquire(deadline)
	if err == nil {
		err = uw.Proxy(ctx, deadline, upstream.BodyLimits{})
	}
	if err != nil {
		w.failures.Add(1)
		return w.callError(err)
	}
	return nil
}

// callError maps the upstream client's errors to the package's.
func (w *Worker) callError(err error) error {
	switch {
	case errors.Is(err, upstream.ErrTimeout):
		return ErrTimeout
	case errors.Is(err, upstream.ErrClosed):
		if r := w.refusal(); r != nil {
			return r
		}
		return ErrClosed
	case errors.Is(err, upstream.ErrMemoryLimit):
		return fmt.Errorf("%w: %w", ErrExited, ErrMemoryLimit)
	case errors.Is(err, upstream.ErrClientBody), errors.Is(err, upstream.ErrBodyTooLarge), errors.Is(err, upstream.ErrBodyStalled):
		return fmt.Errorf("%w: %v", ErrRequestBody, err)
	case errors.Is(err, upstream.ErrWorker), errors.Is(err, upstream.ErrDial):
		if w.exitedNow() {
			<-w.done // reap has recorded why
			return w.Err()
		}
		return fmt.Errorf("%w: %v", ErrBroken, err)
	}
	return fmt.Errorf("worker: %w", err)
}

// bodyCloser is body's Close, if it has one.
func bodyCloser(body io.Reader) io.Closer {
	c, _ := body.(io.Closer)
	return c
}

// requestBody stands in for the client connection the upstream client
// expects: when the exchange ends before a streamed request body was sent
// (the response came first, or failed), the client stops the body's writer
// by setting a read deadline in the past; closing the body unblocks a
// writer waiting in its Read. Nothing else is read or written through it.
type requestBody struct {
	body io.Closer
}

var _ net.Conn = (*requestBody)(nil)

func (r *requestBody) Read([]byte) (int, error)         { return 0, io.EOF }
func (r *requestBody) Write(p []byte) (int, error)      { return len(p), nil }
func (r *requestBody) Close() error                     { return nil }
func (r *requestBody) LocalAddr() net.Addr              { return unixAddr }
func (r *requestBody) RemoteAddr() net.Addr             { return unixAddr }
func (r *requestBody) SetDeadline(t time.Time) error    { return r.SetReadDeadline(t) }
func (r *requestBody) SetWriteDeadline(time.Time) error { return nil }

func (r *requestBody) SetReadDeadline(t time.Time) error {
	if r.body != nil && !t.IsZero() && !t.After(time.Now()) {
		r.body.Close()
	}
	return nil
}

var unixAddr = &net.UnixAddr{Name: "worker", Net: "unix"}
