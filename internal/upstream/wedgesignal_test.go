package upstream

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// A pipelined request that times out waiting for its turn (queued behind
// a response that never comes) reports its worker on Pool.Timeouts, so
// the lifecycle's wedge check pings it: before, only requests whose own
// read timed out did, and a worker whose late requests all waited in a
// pipeline queue (behind a stream, or behind a head with a later
// deadline) was never checked.
func TestQueuedPipelinedTimeoutReportsTheWorker(t *testing.T) {
	heads := make(chan struct{}, 4)
	w := fakeWorker(t, pipelineOn, func(nc net.Conn, br *bufio.Reader) {
		for {
			if _, err := readRequestHead(br); err != nil {
				return
			}
			heads <- struct{}{} // and never answer: a wedged worker
		}
	})
	get := func(deadline time.Time) chan error {
		done := make(chan error, 1)
		go func() {
			ctx := new(fasthttp.RequestCtx)
			ctx.Request.SetRequestURI("/q")
			ctx.Request.Header.SetHost("fn")
			w.inflight.Add(1)
			done <- w.Proxy(ctx, deadline, BodyLimits{})
		}()
		return done
	}
	head := get(time.Now().Add(time.Hour)) // the head: its own read would time out much later
	<-heads
	queued := get(time.Now().Add(50 * time.Millisecond))
	select {
	case err := <-queued:
		if err != ErrTimeout {
			t.Fatalf("queued request: %v, want ErrTimeout", err)
		}
	case <-time.After(eventTimeout):
		t.Fatal("the queued request never timed out")
	}
	select {
	case got := <-w.pool.Timeouts():
		if got != w {
			t.Fatal("another worker reported")
		}
	case <-time.After(eventTimeout):
		t.Fatal("a pipelined request timed out in the queue and its worker was not reported")
	}
	select {
	case <-head: // failed with the connection, whose queue timed out
	case <-time.After(eventTimeout):
		t.Fatal("the head request never ended after its connection failed")
	}
}
