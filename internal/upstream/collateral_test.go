package upstream

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// Three requests pipelined on one connection; the worker reads all three,
// then ends the first one's answer with `end` (a response with Connection:
// close, or an abrupt close) and closes. Later connections answer 200 with
// the path.
func TestPipelinedCallsBehindABrokenConnection(t *testing.T) {
	tests := []struct {
		name    string
		end     string
		wantA   error
		statusA int
		wantB   error // the POST queued behind
	}{
		// RFC 9112 §9.6: nothing after a close was processed, so every
		// queued call, POST included, goes to another connection.
		{"worker said close", "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", nil, 400, nil},
		// Broken without that guarantee: the GET is retried, the POST
		// fails as collateral (not counted in the breaker).
		{"connection broke", "", ErrWorker, 0, ErrCollateral},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var conns atomic.Int32
			got := make(chan string, 8)
			w := fakeWorker(t, pipelineOn, func(nc net.Conn, br *bufio.Reader) {
				first := conns.Add(1) == 1
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if first {
						got <- req.URL.Path
						if i < 2 {
							continue
						}
						io.WriteString(nc, tt.end)
						nc.Close()
						return
					}
					fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s", len(req.URL.Path), req.URL.Path)
				}
			})
			type result struct {
				err    error
				status int
				body   string
			}
			run := func(method, path, body string) chan result {
				ctx := new(fasthttp.RequestCtx)
				ctx.Request.Header.SetMethod(method)
				ctx.Request.SetRequestURI(path)
				ctx.Request.Header.SetHost("fn")
				if body != "" {
					ctx.Request.SetBodyString(body)
				}
				ch := make(chan result, 1)
				w.inflight.Add(1)
				go func() {
					err := w.Proxy(ctx, time.Now().Add(eventTimeout), BodyLimits{})
					ch <- result{err, ctx.Response.StatusCode(), string(ctx.Response.Body())}
				}()
				return ch
			}
			wait := func(what string) {
				select {
				case p := <-got:
					if p != what {
						t.Fatalf("worker read %s, want %s", p, what)
					}
				case <-time.After(eventTimeout):
					t.Fatalf("worker never read %s", what)
				}
			}
			a := run("GET", "/a", "")
			wait("/a")
			b := run("POST", "/b", "payload")
			wait("/b")
			c := run("GET", "/c", "")
			wait("/c")
			ra, rb, rc := <-a, <-b, <-c
			if ra.err != tt.wantA || (tt.wantA == nil && ra.status != tt.statusA) {
				t.Errorf("head call: %v %d, want %v %d", ra.err, ra.status, tt.wantA, tt.statusA)
			}
			if rb.err != tt.wantB || (tt.wantB == nil && rb.body != "/b") {
				t.Errorf("queued POST: %v %d %q, want %v", rb.err, rb.status, rb.body, tt.wantB)
			}
			if rc.err != nil || rc.body != "/c" {
				t.Errorf("queued GET: %v %d %q, want retried elsewhere", rc.err, rc.status, rc.body)
			}
			if n := w.InFlight(); n != 0 {
				t.Errorf("%d slots not given back", n)
			}
			if conns.Load() < 2 {
				t.Errorf("nothing was retried on another connection")
			}
		})
	}
}
