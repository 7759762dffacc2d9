package upstream

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

var pipelineOn = PoolOptions{Pipeline: PipelineOptions{Conns: 1, Depth: 4, MaxAge: time.Hour, Slow: time.Hour, SlowCooldown: time.Second}}

// A 101 to a request that asked for no upgrade is never forwarded: Proxy
// fails with ErrWorker and the worker connection is closed.
func TestUnaskedSwitchingProtocolsIsRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts PoolOptions
	}{{"exclusive", PoolOptions{}}, {"pipelined", pipelineOn}} {
		t.Run(tt.name, func(t *testing.T) {
			closed := make(chan struct{})
			w := fakeWorker(t, tt.opts, func(nc net.Conn, br *bufio.Reader) {
				if _, err := readRequestHead(br); err != nil {
					return
				}
				io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
				nc.SetReadDeadline(time.Now().Add(eventTimeout))
				if _, err := br.ReadByte(); err == io.EOF {
					close(closed)
				}
			})
			ctx := new(fasthttp.RequestCtx)
			ctx.Request.SetRequestURI("/plain")
			ctx.Request.Header.SetHost("fn")
			w.inflight.Add(1)
			if err := w.Proxy(ctx, time.Now().Add(eventTimeout), BodyLimits{}); err != ErrWorker {
				t.Fatalf("Proxy: %v (status %d), want ErrWorker", err, ctx.Response.StatusCode())
			}
			select {
			case <-closed:
			case <-time.After(eventTimeout):
				t.Fatal("worker connection left open after an unasked 101")
			}
			if p, _ := w.pool.Exchanges(); (p == 1) != (tt.opts.Pipeline.Conns > 0) {
				t.Fatalf("%d pipelined exchanges", p)
			}
		})
	}
}
