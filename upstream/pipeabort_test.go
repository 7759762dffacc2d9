package upstream

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// A client that hangs up while its request is in the function, on a
// pipelined connection with another client's request queued behind it:
// the worker is sent "abort <seq>" for that request's X-Edgeway-Seq, the
// connection stays open, and both responses are read in turn.
func TestPipelinedHangupSendsAbort(t *testing.T) {
	heads := make(chan string, 2) // X-Edgeway-Seq of each request, in order
	aborts := make(chan uint64, 4)
	w := fakeWorker(t, PoolOptions{Pipeline: PipelineOptions{Conns: 1, Depth: 8, MaxAge: time.Minute, Slow: time.Minute, SlowCooldown: time.Second}},
		func(nc net.Conn, br *bufio.Reader) {
			// A fake may read ahead (Deno would not): both heads, then
			// the answers once the first request was aborted.
			var seqs []string
			for i := 0; i < 2; i++ {
				r, err := readRequestHead(br)
				if err != nil {
					return
				}
				seqs = append(seqs, r.Header.Get(HeaderSeq))
				heads <- r.Header.Get(HeaderSeq)
			}
			select {
			case seq := <-aborts:
				if strconv.FormatUint(seq, 10) != seqs[0] {
					io.WriteString(nc, "HTTP/1.1 500 Wrong\r\nContent-Length: 0\r\n\r\n")
					return
				}
			case <-time.After(eventTimeout):
				return
			}
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\naborted")
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		})
	w.hangupCheck = 10 * time.Millisecond
	w.sendAbort = func(seq uint64) { aborts <- seq }
	go w.watchPipes()
	t.Cleanup(func() { w.MarkGone(false) })

	proxy := func(conn net.Conn, path string) (*fasthttp.RequestCtx, chan error) {
		ctx := new(fasthttp.RequestCtx)
		ctx.Init2(wrappedConn{conn}, nil, false)
		ctx.Request.SetRequestURI(path)
		ctx.Request.Header.SetHost("fn")
		// A client cannot set the header (the gateway strips x-edgeway-*);
		// the number sent is the gateway's own.
		w.inflight.Add(1)
		done := make(chan error, 1)
		go func() { done <- w.Proxy(ctx, time.Now().Add(2*eventTimeout), BodyLimits{}) }()
		return ctx, done
	}
	serverA, clientA := tcpPair(t)
	serverB, _ := tcpPair(t)
	ctxA, doneA := proxy(serverA, "/slow")
	if seq := <-heads; seq == "" {
		t.Fatal("the pipelined request carries no X-Edgeway-Seq")
	}
	ctxB, doneB := proxy(serverB, "/quick")
	if seq := <-heads; seq == "" {
		t.Fatal("the queued request carries no X-Edgeway-Seq")
	}
	clientA.Close()
	for _, x := range []struct {
		ctx  *fasthttp.RequestCtx
		done chan error
		want string
	}{{ctxA, doneA, "aborted"}, {ctxB, doneB, "ok"}} {
		select {
		case err := <-x.done:
			if err != nil || string(x.ctx.Response.Body()) != x.want {
				t.Fatalf("Proxy: %v %q, want %q", err, x.ctx.Response.Body(), x.want)
			}
		case <-time.After(2 * eventTimeout):
			t.Fatalf("no answer (want %q)", x.want)
		}
	}
	if p, e := w.pool.Exchanges(); p != 2 || e != 0 {
		t.Fatalf("%d pipelined, %d exclusive: want both pipelined", p, e)
	}
}
