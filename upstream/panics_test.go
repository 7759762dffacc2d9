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
