package upstream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

func panicCount(where string) uint64 {
	return metrics.GetOrCreateCounter(`edgeway_panics_total{where="` + where + `"}`).Get()
}

// panicObserver panics when bytes move in the direction it is set for.
type panicObserver struct{ up, down bool }

func (panicObserver) Opened()           {}
func (panicObserver) Closed(SessionEnd) {}
func (o panicObserver) Transferred(in, out int) {
	if (o.up && in > 0) || (o.down && out > 0) {
		panic("observer bug")
	}
}

// A panic in either direction of a spliced WebSocket ends the session:
// both connections are closed (the other direction ends too) and the
// panic is counted; the process goes on.
func TestWebSocketSessionSurvivesAPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		obs  panicObserver
		send func(client, worker net.Conn)
	}{
		{"client to worker", panicObserver{up: true}, func(client, _ net.Conn) { client.Write([]byte{0x81, 0x01, 'x'}) }},
		{"worker to client", panicObserver{down: true}, func(_, worker net.Conn) { worker.Write([]byte{0x81, 0x01, 'x'}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clientSide, client := net.Pipe()
			workerSide, worker := net.Pipe()
			p := NewPool(PoolOptions{MaxWorkers: 1})
			w := NewWorker(p, 1, 0, "", WorkerOptions{BufferSize: 4096})
			s := newSession(client, worker, bufio.NewReader(worker), w, SessionOptions{CloseTimeout: time.Second, Observer: tc.obs})
			before := panicCount("websocket")
			ran := make(chan struct{})
			go func() { s.run(); close(ran) }()
			// Drain what the gateway writes, so its writes never block.
			go io.Copy(io.Discard, clientSide)
			go io.Copy(io.Discard, workerSide)
			tc.send(clientSide, workerSide)
			select {
			case <-ran:
			case <-time.After(eventTimeout):
				t.Fatal("the session did not end after a panic")
			}
			if got := panicCount("websocket"); got != before+1 {
				t.Fatalf("websocket panics %d → %d, want one more", before, got)
			}
			for name, c := range map[string]net.Conn{"client": clientSide, "worker": workerSide} {
				c.SetDeadline(time.Now().Add(eventTimeout))
				if _, err := c.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
					t.Fatalf("%s connection still open after the panic: %v", name, err)
				}
			}
		})
	}
}

// A panic while fasthttp reads a streamed response body (outside the
// gateway's recover) ends the body as broken instead of the process.
func TestStreamReadSurvivesAPanic(t *testing.T) {
	before := panicCount("stream")
	b := &bodyReader{c: &conn{}, mode: framingFixed, left: 10} // no reader: Read panics
	n, err := b.Read(make([]byte, 4))
	if n != 0 || err != io.ErrUnexpectedEOF || !b.failed {
		t.Fatalf("Read = %d, %v (failed %v), want 0, unexpected EOF, failed", n, err, b.failed)
	}
	if got := panicCount("stream"); got != before+1 {
		t.Fatalf("stream panics %d → %d, want one more", before, got)
	}
}

type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("body source bug") }

// A panic in the request body writer goroutine is counted and ends the
// exchange as failed.
func TestBodyWriterSurvivesAPanic(t *testing.T) {
	here, there := net.Pipe()
	defer there.Close()
	go io.Copy(io.Discard, there)
	c := &conn{nc: here, br: bufio.NewReader(here), bw: bufio.NewWriter(here)}
	req := new(fasthttp.Request)
	req.SetRequestURI("/up")
	req.Header.SetMethod("POST")
	req.SetBodyStream(panicReader{}, -1)
	before := panicCount("body_writer")
	c.startWriter(req, nil, BodyLimits{}, time.Now().Add(eventTimeout))
	select {
	case err := <-c.writing:
		if err == nil {
			t.Fatal("a panicked writer reported success")
		}
	case <-time.After(eventTimeout):
		t.Fatal("the writer never ended")
	}
	if got := panicCount("body_writer"); got != before+1 {
		t.Fatalf("body_writer panics %d → %d, want one more", before, got)
	}
}

// panicOnOpen is a session observer whose Opened panics.
type panicOnOpen struct{}

func (panicOnOpen) Opened()              { panic("observer bug on open") }
func (panicOnOpen) Transferred(int, int) {}
func (panicOnOpen) Closed(SessionEnd)    {}

// The hijack handler that runs an accepted WebSocket runs on fasthttp's
// connection goroutine, which recovers nothing: a panic there (here in the
// observer) is recovered, both connections are closed and the session's
// WebSocket slot and gateway reservation are given back.
func TestWebSocketHijackHandlerSurvivesAPanic(t *testing.T) {
	workerClosed := make(chan struct{})
	w := fakeWorker(t, PoolOptions{}, func(nc net.Conn, br *bufio.Reader) {
		if _, err := readRequestHead(br); err != nil {
			return
		}
		io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		nc.SetReadDeadline(time.Now().Add(eventTimeout))
		if _, err := br.ReadByte(); err == io.EOF {
			close(workerClosed)
		}
	})
	sessions := NewSessions(0)
	ln := fasthttputil.NewInmemoryListener()
	defer ln.Close()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		w.tryClaimWebSocket(0)
		sessions.Reserve()
		if err := w.Upgrade(ctx, time.Now().Add(eventTimeout), sessions, SessionOptions{CloseTimeout: time.Second, Observer: panicOnOpen{}}); err != nil {
			t.Errorf("Upgrade: %v", err)
		}
	}}
	go srv.Serve(ln)
	before := panicCount("websocket")
	c, err := ln.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: fn\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(eventTimeout))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("client connection not closed after the panic: %v", err)
	}
	select {
	case <-workerClosed:
	case <-time.After(eventTimeout):
		t.Fatal("worker connection left open after the panic")
	}
	if !w.WaitWebSockets(eventTimeout) {
		t.Fatalf("the worker's WebSocket slot was kept after the panic (%d)", w.WebSockets())
	}
	sessions.GoAway(CloseGoingAway, eventTimeout) // waits for the reservations to end
	if n := sessions.reserved.Load(); n != 0 {
		t.Fatalf("%d gateway reservations kept after the panic", n)
	}
	if got := panicCount("websocket"); got != before+1 {
		t.Fatalf("websocket panics %d → %d, want one more", before, got)
	}
}
