package upstream

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// pattern is n bytes that differ from one offset to the next, so a lost,
// doubled or reordered piece shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// Bodies of known length up to Whole go to the worker as one request,
// head and body byte for byte, and come back read whole (no stream);
// above Whole both stream as before. The worker echoes the body with a
// Content-Length, its head and body in separate writes, so the gateway
// must wait for the rest of the body it did not get with the head.
func TestWholeBodiesKeepTheirBytesAndFraming(t *testing.T) {
	const whole = 32 << 10
	cases := []struct {
		name   string
		size   int
		stream bool // the response body streams
	}{
		{"just above the buffer", 4097, false},
		{"between buffer and bound", 20000, false},
		{"at the bound", whole, false},
		{"above the bound streams", whole + 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var dials atomic.Int32
			w := fakeWorker(t, PoolOptions{}, func(nc net.Conn, br *bufio.Reader) {
				dials.Add(1)
				for {
					req, err := readRequestHead(br)
					if err != nil {
						return
					}
					body, err := io.ReadAll(req.Body)
					if err != nil || len(body) != int(req.ContentLength) {
						return
					}
					fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
					nc.Write(body)
				}
			})
			want := pattern(tc.size)
			for i := 0; i < 2; i++ { // the second exchange reuses the connection
				ctx, _, client := streamedCtx(t, tc.size)
				go client.Write(want)
				w.inflight.Add(1)
				err := w.Proxy(ctx, time.Now().Add(eventTimeout), BodyLimits{Whole: whole, IdleGap: eventTimeout})
				if err != nil {
					t.Fatalf("exchange %d: Proxy: %v", i, err)
				}
				if got := ctx.Response.IsBodyStream(); got != tc.stream {
					t.Fatalf("exchange %d: response streamed %v, want %v", i, got, tc.stream)
				}
				got := ctx.Response.Body() // reads a stream to its end
				if !bytes.Equal(got, want) {
					t.Fatalf("exchange %d: echoed %d bytes, not the %d sent (or in another order)", i, len(got), len(want))
				}
				if cl := ctx.Response.Header.ContentLength(); cl != tc.size {
					t.Fatalf("exchange %d: Content-Length %d, want %d", i, cl, tc.size)
				}
				ctx.Response.CloseBodyStream()
				ctx.Response.Reset()
				ctx.Request.Reset() // gives the body's buffer back: the next exchange reuses it
			}
			// (A streamed upload's writer may still be finishing when its
			// response ends; it is then stopped and its connection closed.)
			if n := dials.Load(); n != 1 && !tc.stream {
				t.Fatalf("%d connections dialed, want 1 (kept alive)", n)
			}
			if w.InFlight() != 0 {
				t.Fatalf("slot not given back: %d in flight", w.InFlight())
			}
		})
	}
}

// A body to be read whole that stops arriving is cut off after IdleGap
// (ErrBodyStalled, 408), one that ends short is ErrClientBody; the worker
// is never sent a part of it, and the slot is given back.
func TestWholeBodyFromAStallingOrShortClient(t *testing.T) {
	cases := []struct {
		name string
		end  func(client net.Conn)
		want error
	}{
		{"stalls", func(net.Conn) {}, ErrBodyStalled},
		{"closes early", func(c net.Conn) { c.Close() }, ErrClientBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int32
			w := fakeWorker(t, PoolOptions{}, func(nc net.Conn, br *bufio.Reader) {
				if _, err := readRequestHead(br); err == nil {
					requests.Add(1)
				}
			})
			ctx, _, client := streamedCtx(t, 20000)
			go func() {
				client.Write(pattern(5000))
				tc.end(client)
			}()
			w.inflight.Add(1)
			err := w.Proxy(ctx, time.Now().Add(eventTimeout), BodyLimits{Whole: 64 << 10, IdleGap: 50 * time.Millisecond})
			if err != tc.want {
				t.Fatalf("Proxy: %v, want %v", err, tc.want)
			}
			if n := requests.Load(); n != 0 {
				t.Fatalf("the worker got %d requests, want none", n)
			}
			if w.InFlight() != 0 {
				t.Fatalf("slot not given back: %d in flight", w.InFlight())
			}
		})
	}
}

// A declared length above the function's body limit is not read whole:
// it streams, and the writer's limit refuses it as before.
func TestWholeBodyRespectsTheBodyLimit(t *testing.T) {
	if wholeRequest(newPost(t, 1000), BodyLimits{Whole: 64 << 10, Max: 999}) {
		t.Fatal("a body above Max is read whole")
	}
	if !wholeRequest(newPost(t, 1000), BodyLimits{Whole: 64 << 10, Max: 1000}) {
		t.Fatal("a body at Max is not read whole")
	}
	if wholeRequest(newPost(t, 1000), BodyLimits{}) {
		t.Fatal("Whole 0 reads a body whole")
	}
	if wholeRequest(newPost(t, -1), BodyLimits{Whole: 64 << 10}) {
		t.Fatal("a chunked body is read whole")
	}
}

func newPost(t *testing.T, n int) *fasthttp.Request {
	ctx, _, _ := streamedCtx(t, 1)
	ctx.Request.SetBodyStream(bytes.NewReader(nil), n) // n = -1: chunked
	return &ctx.Request
}
