package upstream

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// A worker that stops reading its socket (a spinning event loop, a hostile
// function) fills the kernel's buffer; the pipelined writer then blocks in
// its flush while holding the connection's write lock. Every request
// written there must still end by its deadline with an error, not hang
// (and keep every later request to that connection waiting on the lock).
// The failed pipelined write counts as not sent and the request goes on
// an exclusive connection, whose deadline ends it too.
func TestPipelinedWriteToStuckWorkerEnds(t *testing.T) {
	accepted := make(chan struct{}, 8)
	w := fakeWorker(t, PoolOptions{Pipeline: PipelineOptions{Conns: 1, Depth: 64, MaxAge: time.Minute, Slow: time.Minute, SlowCooldown: time.Second}},
		func(nc net.Conn, br *bufio.Reader) {
			accepted <- struct{}{}
			// Never reads: the socket buffers fill and stay full.
			select {}
		})
	t.Cleanup(func() { w.MarkGone(false) })

	if !w.pool.pipelineAllowed(time.Now().UnixNano()) {
		t.Fatal("pipelining is off: the test would not exercise the pipelined writer")
	}
	big := strings.Repeat("x", 256<<10) // larger than a Unix socket's buffers together
	const n = 4
	done := make(chan error, n)
	for i := 0; i < n; i++ {
		server, _ := tcpPair(t)
		ctx := new(fasthttp.RequestCtx)
		ctx.Init2(wrappedConn{server}, nil, false)
		ctx.Request.SetRequestURI("/stuck")
		ctx.Request.Header.SetHost("fn")
		ctx.Request.Header.Set("X-Big", big)
		w.inflight.Add(1)
		go func() { done <- w.Proxy(ctx, time.Now().Add(200*time.Millisecond), BodyLimits{}) }()
	}
	for i := 0; i < n; i++ {
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a request to a worker that reads nothing succeeded")
			}
		case <-time.After(4 * eventTimeout):
			t.Fatalf("%d of %d requests still blocked writing to a worker that reads nothing", n-i, n)
		}
	}
}
