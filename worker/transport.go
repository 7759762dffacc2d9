package worker

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

var _ http.RoundTripper = (*Worker)(nil)

// RoundTrip sends an HTTP/1.1 request to the worker, so a Worker is an
// http.RoundTripper: http.Client{Transport: w} calls the function. The
// URL's path and query are sent; its host (or req.Host) becomes the
// function's req.url host, whatever the scheme. The request body is
// streamed (chunked when ContentLength is unknown) while the response is
// read; the response body is streamed too, holding a worker connection
// until it is read to its end or closed.
//
// The exchange, body included, is bounded by the earlier of
// Options.RequestTimeout and the request context's deadline (so
// http.Client.Timeout applies). Cancelling the context without a deadline
// is seen before the request is sent and between reads of the response
// body, not while the worker is awaited. Response trailers are dropped;
// WebSocket upgrades go through DialWebSocket.
func (w *Worker) RoundTrip(r *http.Request) (*http.Response, error) {
	closeBody := func() {
		if r.Body != nil {
			r.Body.Close()
		}
	}
	if err := r.Context().Err(); err != nil {
		closeBody()
		return nil, err
	}
	var body io.ReadCloser
	if r.Body != nil && r.Body != http.NoBody {
		body = r.Body
	}
	ctx := newExchange(body)
	req := &ctx.Request
	req.Header.SetMethod(r.Method)
	req.SetRequestURI(r.URL.RequestURI())
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if host == "" {
		host = defaultHost
	}
	req.Header.SetHost(host)
	for k, vs := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Host", "Content-Length", "Transfer-Encoding":
			continue // set from the request's own fields
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if body != nil {
		n := r.ContentLength
		if n <= 0 {
			n = -1 // unknown: chunked
		}
		req.SetBodyStream(body, int(n))
	}
	deadline := time.Now().Add(w.timeout)
	if d, ok := r.Context().Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := w.exchange(ctx, deadline); err != nil {
		closeBody()
		if cerr := r.Context().Err(); cerr != nil {
			return nil, fmt.Errorf("%w (%w)", err, cerr)
		}
		return nil, err
	}
	return httpResponse(r, &ctx.Response, closeBody), nil
}

// httpResponse converts the worker's response. done runs once the body is
// finished with (the request body can be closed then).
func httpResponse(r *http.Request, fr *fasthttp.Response, done func()) *http.Response {
	code := fr.StatusCode()
	resp := &http.Response{
		Status:        strconv.Itoa(code) + " " + http.StatusText(code),
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        make(http.Header),
		ContentLength: int64(fr.Header.ContentLength()),
		Request:       r,
	}
	for k, v := range fr.Header.All() {
		key := http.CanonicalHeaderKey(string(k))
		if key == "Transfer-Encoding" {
			continue
		}
		resp.Header.Add(key, string(v))
	}
	if resp.ContentLength < 0 {
		resp.ContentLength = -1
		if fr.Header.ContentLength() == -1 {
			resp.TransferEncoding = []string{"chunked"}
		}
	}
	switch stream := fr.BodyStream(); {
	case fr.SkipBody || r.Method == http.MethodHead:
		if stream != nil {
			fr.CloseBodyStream()
		}
		resp.Body = http.NoBody
		done()
	case stream != nil:
		resp.Body = &responseBody{r: r, stream: stream, closer: bodyCloser(stream), done: done}
	default:
		resp.Body = io.NopCloser(bytes.NewReader(bytes.Clone(fr.Body())))
		resp.ContentLength = int64(len(fr.Body()))
		done()
	}
	return resp
}

// responseBody is a streamed response body. Close gives the worker
// connection back (reusable if the body was read to its end); a Close
// during a Read waits for that Read, which the exchange's deadline bounds.
type responseBody struct {
	r      *http.Request
	mu     sync.Mutex
	stream io.Reader
	closer io.Closer
	done   func()
	closed bool
}

func (b *responseBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, fmt.Errorf("http: read on closed response body")
	}
	if err := b.r.Context().Err(); err != nil {
		return 0, err
	}
	return b.stream.Read(p)
}

func (b *responseBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.closer != nil {
		b.closer.Close()
	}
	b.done()
	return nil
}
