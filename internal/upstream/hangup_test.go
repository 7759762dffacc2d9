package upstream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// wrappedConn stands for the gateway's client connection wrapper.
type wrappedConn struct{ net.Conn }

func (c wrappedConn) NetConn() net.Conn { return c.Conn }

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// A client that hangs up while its request waits for the response head
// makes Proxy close the worker connection (Deno then aborts req.signal).
func TestClientHangupClosesWorkerConnection(t *testing.T) {
	workerSawClose := make(chan struct{})
	w := fakeWorker(t, PoolOptions{}, func(nc net.Conn, br *bufio.Reader) {
		if _, err := readRequestHead(br); err != nil {
			return
		}
		// Never answers; waits for the gateway to close.
		nc.SetReadDeadline(time.Now().Add(eventTimeout))
		if _, err := br.ReadByte(); err == io.EOF {
			close(workerSawClose)
		}
	})
	w.hangupCheck = 10 * time.Millisecond
	server, client := tcpPair(t)
	ctx := new(fasthttp.RequestCtx)
	ctx.Init2(wrappedConn{server}, nil, false)
	ctx.Request.SetRequestURI("/slow")
	ctx.Request.Header.SetHost("fn")
	w.inflight.Add(1)
	done := make(chan error, 1)
	go func() { done <- w.Proxy(ctx, time.Now().Add(2*eventTimeout), BodyLimits{}) }()
	client.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClientBody) {
			t.Fatalf("Proxy: %v, want a client error", err)
		}
	case <-time.After(eventTimeout):
		t.Fatal("Proxy kept waiting for a client that hung up")
	}
	select {
	case <-workerSawClose:
	case <-time.After(eventTimeout):
		t.Fatal("worker connection left open")
	}
}

// A client that stays is not disturbed by the checks.
func TestHangupCheckLetsAWaitingClientBe(t *testing.T) {
	answer := make(chan struct{})
	w := fakeWorker(t, PoolOptions{}, func(nc net.Conn, br *bufio.Reader) {
		if _, err := readRequestHead(br); err != nil {
			return
		}
		<-answer
		io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	w.hangupCheck = time.Millisecond
	server, _ := tcpPair(t)
	ctx := new(fasthttp.RequestCtx)
	ctx.Init2(wrappedConn{server}, nil, false)
	ctx.Request.SetRequestURI("/slow")
	ctx.Request.Header.SetHost("fn")
	w.inflight.Add(1)
	done := make(chan error, 1)
	go func() { done <- w.Proxy(ctx, time.Now().Add(eventTimeout), BodyLimits{}) }()
	// Let several checks pass: the answer comes after the worker has been
	// polled for a while (no sleep needed for correctness: either way the
	// response must arrive intact).
	time.AfterFunc(50*time.Millisecond, func() { close(answer) })
	if err := <-done; err != nil || string(ctx.Response.Body()) != "ok" {
		t.Fatalf("Proxy: %v %q", err, ctx.Response.Body())
	}
}
