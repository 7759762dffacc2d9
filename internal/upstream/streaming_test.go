package upstream

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

type proxied struct {
	ctx *fasthttp.RequestCtx
	err error
}

func startProxy(w *Worker, method, uri, body string, hdr ...string) chan proxied {
	ctx := new(fasthttp.RequestCtx)
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetHost("fn")
	for i := 0; i+1 < len(hdr); i += 2 {
		ctx.Request.Header.Set(hdr[i], hdr[i+1])
	}
	if body != "" {
		ctx.Request.SetBodyString(body)
	}
	ch := make(chan proxied, 1)
	w.inflight.Add(1)
	go func() {
		err := w.Proxy(ctx, time.Now().Add(eventTimeout), BodyLimits{})
		ch <- proxied{ctx, err}
	}()
	return ch
}

func await(t *testing.T, ch chan proxied, what string) proxied {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(eventTimeout):
		t.Fatalf("%s: no answer", what)
		return proxied{}
	}
}

// streamWorker answers /sse with a chunked response that lasts until
// endStream is closed, anything else at once with its path. On the first
// connection, /sse's head waits until one more request is queued behind it
// (so it is pipelined there), and seen gets every path read.
func streamWorker(t *testing.T, endStream chan struct{}, seen chan string) *Worker {
	var conns atomic.Int32
	return fakeWorker(t, pipelineOn, func(nc net.Conn, br *bufio.Reader) {
		first := conns.Add(1) == 1
		var mu sync.Mutex
		var queued []string
		read := func() (string, bool) {
			req, err := http.ReadRequest(br)
			if err != nil {
				return "", false
			}
			io.Copy(io.Discard, req.Body)
			if first {
				seen <- req.URL.Path
			}
			return req.URL.Path, true
		}
		for {
			path, ok := read()
			if !ok {
				return
			}
			if path != "/sse" {
				fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s", len(path), path)
				continue
			}
			if first {
				next, ok := read()
				if !ok {
					return
				}
				queued = append(queued, next)
			}
			io.WriteString(nc, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n9\r\ndata: 0\n\n\r\n")
			// Like hyper: what is queued is handled after the stream.
			go func() {
				<-endStream
				io.WriteString(nc, "0\r\n\r\n")
				mu.Lock()
				defer mu.Unlock()
				for _, p := range queued {
					fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s", len(p), p)
				}
			}()
			for {
				path, ok := read()
				if !ok {
					return
				}
				mu.Lock()
				queued = append(queued, path)
				mu.Unlock()
			}
		}
	})
}

func expectSeen(t *testing.T, seen chan string, want string) {
	t.Helper()
	select {
	case p := <-seen:
		if p != want {
			t.Fatalf("worker read %s, want %s", p, want)
		}
	case <-time.After(eventTimeout):
		t.Fatalf("worker never read %s", want)
	}
}

// A GET pipelined behind a response that turns out to stream is answered
// on another connection while the stream runs, and the stream's path is
// no longer pipelined.
func TestQuickRequestBehindAStreamGoesElsewhere(t *testing.T) {
	endStream, seen := make(chan struct{}), make(chan string, 8)
	w := streamWorker(t, endStream, seen)
	sse := startProxy(w, "GET", "/sse", "")
	expectSeen(t, seen, "/sse")
	quick := startProxy(w, "GET", "/quick", "")
	expectSeen(t, seen, "/quick") // written behind the stream's request
	r := await(t, quick, "GET /quick behind a stream")
	if r.err != nil || string(r.ctx.Response.Body()) != "/quick" {
		t.Fatalf("quick: %v %q", r.err, r.ctx.Response.Body())
	}
	s := await(t, sse, "GET /sse")
	if s.err != nil {
		t.Fatal(s.err)
	}
	close(endStream)
	if b, err := io.ReadAll(s.ctx.Response.BodyStream()); err != nil || string(b) != "data: 0\n\n" {
		t.Fatalf("stream %q %v", b, err)
	}
	s.ctx.Response.CloseBodyStream()
	_, before := w.pool.Exchanges()
	again := await(t, startProxy(w, "GET", "/sse?x=1", ""), "second /sse")
	if _, after := w.pool.Exchanges(); again.err != nil || after != before+1 {
		t.Fatalf("a path that streamed was pipelined again (%v, exclusive %d → %d)", again.err, before, after)
	}
	again.ctx.Response.CloseBodyStream()
}

// A POST queued behind a stream cannot go elsewhere (it could run twice):
// it waits for the stream's end and is answered then.
func TestPostBehindAStreamWaitsForIt(t *testing.T) {
	endStream, seen := make(chan struct{}), make(chan string, 8)
	w := streamWorker(t, endStream, seen)
	sse := startProxy(w, "GET", "/sse", "")
	expectSeen(t, seen, "/sse")
	post := startProxy(w, "POST", "/post", "x")
	expectSeen(t, seen, "/post")
	s := await(t, sse, "GET /sse")
	select {
	case r := <-post:
		t.Fatalf("POST answered during the stream: %v %q", r.err, r.ctx.Response.Body())
	default:
	}
	close(endStream)
	io.ReadAll(s.ctx.Response.BodyStream())
	go s.ctx.Response.CloseBodyStream()
	r := await(t, post, "POST after the stream")
	if r.err != nil || string(r.ctx.Response.Body()) != "/post" {
		t.Fatalf("post: %v %q", r.err, r.ctx.Response.Body())
	}
}

// A request asking for an event stream is never pipelined.
func TestEventStreamRequestsAreNotPipelined(t *testing.T) {
	endStream, seen := make(chan struct{}), make(chan string, 8)
	close(endStream)
	w := streamWorker(t, endStream, seen)
	r := await(t, startProxy(w, "GET", "/events", "", "Accept", "text/event-stream"), "GET /events")
	if p, e := w.pool.Exchanges(); r.err != nil || p != 0 || e != 1 {
		t.Fatalf("%v: pipelined %d exclusive %d", r.err, p, e)
	}
}
