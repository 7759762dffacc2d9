package upstream

import (
	"bufio"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// watchedConn is a fake client connection implementing BodyWatcher.
type watchedConn struct {
	net.Conn
	mu       sync.Mutex
	events   []string
	doneCall chan bool
}

func (c *watchedConn) BodyInFlight() {
	c.mu.Lock()
	c.events = append(c.events, "inflight")
	c.mu.Unlock()
}

func (c *watchedConn) BodyDone(consumed bool) {
	c.mu.Lock()
	c.events = append(c.events, "done")
	c.mu.Unlock()
	c.doneCall <- consumed
}

func (c *watchedConn) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.events...)
}

// streamedCtx returns a request context whose body (declared length n, above
// the worker's buffer) streams from a client connection that sends only
// what the test writes to the returned end.
func streamedCtx(t *testing.T, n int) (*fasthttp.RequestCtx, *watchedConn, net.Conn) {
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	wc := &watchedConn{Conn: server, doneCall: make(chan bool, 1)}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init2(wc, nil, false)
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/upload")
	ctx.Request.Header.SetHost("fn")
	// fasthttp's own body stream ends at the declared length.
	ctx.Request.SetBodyStream(io.LimitReader(wc, int64(n)), n)
	return ctx, wc, client
}

// proxyAsync runs Proxy and reports its error on the returned channel.
func proxyAsync(w *Worker, ctx *fasthttp.RequestCtx) chan error {
	w.inflight.Add(1)
	done := make(chan error, 1)
	go func() { done <- w.Proxy(ctx, time.Now().Add(time.Minute), BodyLimits{}) }()
	return done
}

func waitErr(t *testing.T, ch chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(eventTimeout):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

// A worker that answers before reading the body: the writer, blocked on a
// client that sends nothing more, is stopped and Proxy returns; no body
// ownership is handed out (the gateway settles the body itself).
func TestEarlyAnswerStopsWriterBlockedOnClient(t *testing.T) {
	w := fakeWorker(t, PoolOptions{}, func(nc net.Conn, br *bufio.Reader) {
		if _, err := readRequestHead(br); err != nil {
			return
		}
		io.WriteString(nc, "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
	})
	ctx, wc, client := streamedCtx(t, 1<<20)
	done := proxyAsync(w, ctx)
	client.Write([]byte("only the first bytes")) // then the client stalls
	if err := waitErr(t, done, "Proxy"); err != nil {
		t.Fatalf("Proxy: %v", err)
	}
	if got := string(ctx.Response.Body()); ctx.Response.StatusCode() != 403 || got != "no" {
		t.Fatalf("response %d %q", ctx.Response.StatusCode(), got)
	}
	if ev := wc.seen(); len(ev) != 0 {
		t.Fatalf("watcher got %v, want nothing: no writer outlives Proxy", ev)
	}
	if w.InFlight() != 0 {
		t.Fatalf("slot not given back: %d in flight", w.InFlight())
	}
}

// A streamed response while the body is still being sent: Proxy returns
// with the writer running and says so (BodyInFlight); when the response
// ends, the writer is stopped and BodyDone(false) says the body was not
// read to its end.
func TestStreamedResponseReportsBodyInFlightThenNotConsumed(t *testing.T) {
	finish := make(chan struct{})
	w := fakeWorker(t, PoolOptions{}, func(nc net.Conn, br *bufio.Reader) {
		if _, err := readRequestHead(br); err != nil {
			return
		}
		io.WriteString(nc, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		<-finish
		io.WriteString(nc, "2\r\nhi\r\n0\r\n\r\n")
	})
	ctx, wc, client := streamedCtx(t, 1<<20)
	done := proxyAsync(w, ctx)
	client.Write([]byte("part of the body"))
	if err := waitErr(t, done, "Proxy"); err != nil {
		t.Fatalf("Proxy: %v", err)
	}
	if ev := wc.seen(); len(ev) != 1 || ev[0] != "inflight" {
		t.Fatalf("watcher got %v, want [inflight]", ev)
	}
	close(finish)
	body := ctx.Response.BodyStream()
	got, err := io.ReadAll(body)
	if err != nil || string(got) != "hi" {
		t.Fatalf("stream %q %v", got, err)
	}
	closed := make(chan struct{})
	go func() { ctx.Response.CloseBodyStream(); close(closed) }()
	select {
	case consumed := <-wc.doneCall:
		if consumed {
			t.Fatal("BodyDone(true) for a body the client never finished")
		}
	case <-time.After(eventTimeout):
		t.Fatal("BodyDone never called")
	}
	<-closed
	if w.InFlight() != 0 {
		t.Fatalf("slot not given back: %d in flight", w.InFlight())
	}
}

// A body read to its end while the response streams: BodyDone(true).
func TestStreamedResponseReportsBodyConsumed(t *testing.T) {
	const n = 8192
	w := fakeWorker(t, PoolOptions{}, func(nc net.Conn, br *bufio.Reader) {
		req, err := readRequestHead(br)
		if err != nil {
			return
		}
		io.WriteString(nc, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		io.Copy(io.Discard, req.Body)
		io.WriteString(nc, "2\r\nok\r\n0\r\n\r\n")
	})
	ctx, wc, client := streamedCtx(t, n)
	done := proxyAsync(w, ctx)
	go client.Write(make([]byte, n))
	if err := waitErr(t, done, "Proxy"); err != nil {
		t.Fatalf("Proxy: %v", err)
	}
	if got, err := io.ReadAll(ctx.Response.BodyStream()); err != nil || string(got) != "ok" {
		t.Fatalf("stream %q %v", got, err)
	}
	go ctx.Response.CloseBodyStream()
	select {
	case consumed := <-wc.doneCall:
		if !consumed {
			t.Fatal("BodyDone(false) for a body read to its end")
		}
	case <-time.After(eventTimeout):
		t.Fatal("BodyDone never called")
	}
}

// A worker that breaks the exchange while the writer waits on the client:
// Proxy fails with ErrWorker (not a client body error) and returns.
func TestWorkerFailureStopsWriterBlockedOnClient(t *testing.T) {
	w := fakeWorker(t, PoolOptions{}, func(nc net.Conn, br *bufio.Reader) {
		readRequestHead(br)
		nc.Close()
	})
	ctx, _, client := streamedCtx(t, 1<<20)
	done := proxyAsync(w, ctx)
	client.Write([]byte("the head leaves with the first body bytes"))
	if err := waitErr(t, done, "Proxy"); err != ErrWorker {
		t.Fatalf("Proxy: %v, want ErrWorker", err)
	}
}
