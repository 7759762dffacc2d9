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
// connection stays open, and both responses are read in turn. The queued
// request's client hangs up too: its abort is sent once it is the head (in
// the function), not before.
func TestPipelinedHangupSendsAbort(t *testing.T) {
	heads := make(chan string, 2) // X-Edgeway-Seq of each request, in order
	aborts := make(chan string, 64)
	answeredA := make(chan struct{})
	w := fakeWorker(t, PoolOptions{Pipeline: PipelineOptions{Conns: 1, Depth: 8, MaxAge: time.Minute, Slow: time.Minute, SlowCooldown: time.Second}},
		func(nc net.Conn, br *bufio.Reader) {
			// A fake may read ahead (Deno would not): both heads, then
			// each answer once its request was aborted.
			var seqs []string
			for i := 0; i < 2; i++ {
				r, err := readRequestHead(br)
				if err != nil {
					return
				}
				seqs = append(seqs, r.Header.Get(HeaderSeq))
				heads <- r.Header.Get(HeaderSeq)
			}
			awaitAbort := func(seq string) bool {
				for {
					select {
					case got := <-aborts:
						if got == seq {
							return true
						}
						if got != seqs[0] { // repeats of the first are fine
							io.WriteString(nc, "HTTP/1.1 500 Wrong\r\nContent-Length: 0\r\n\r\n")
							return false
						}
					case <-time.After(eventTimeout):
						return false
					}
				}
			}
			if !awaitAbort(seqs[0]) {
				return
			}
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\naborted")
			<-answeredA
			if !awaitAbort(seqs[1]) {
				return
			}
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		})
	w.hangupCheck = 10 * time.Millisecond
	w.sendAbort = func(seq uint64) {
		select {
		case aborts <- strconv.FormatUint(seq, 10):
		default:
		}
	}
	go w.watchPipes()
	t.Cleanup(func() { w.MarkGone(false) })

	proxy := func(conn net.Conn, path string) (*fasthttp.RequestCtx, chan error) {
		ctx := new(fasthttp.RequestCtx)
		ctx.Init2(wrappedConn{conn}, nil, false)
		ctx.Request.SetRequestURI(path)
		ctx.Request.Header.SetHost("fn")
		w.inflight.Add(1)
		done := make(chan error, 1)
		go func() { done <- w.Proxy(ctx, time.Now().Add(2*eventTimeout), BodyLimits{}) }()
		return ctx, done
	}
	serverA, clientA := tcpPair(t)
	serverB, clientB := tcpPair(t)
	ctxA, doneA := proxy(serverA, "/slow")
	if seq := <-heads; seq == "" {
		t.Fatal("the pipelined request carries no X-Edgeway-Seq")
	}
	ctxB, doneB := proxy(serverB, "/quick")
	if seq := <-heads; seq == "" {
		t.Fatal("the queued request carries no X-Edgeway-Seq")
	}
	clientA.Close()
	clientB.Close() // queued: no abort for it until it is the head
	wait := func(ctx *fasthttp.RequestCtx, done chan error, want string) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil || string(ctx.Response.Body()) != want {
				t.Fatalf("Proxy: %v %q, want %q", err, ctx.Response.Body(), want)
			}
		case <-time.After(2 * eventTimeout):
			t.Fatalf("no answer (want %q)", want)
		}
	}
	wait(ctxA, doneA, "aborted")
	close(answeredA)
	wait(ctxB, doneB, "ok")
	if p, e := w.pool.Exchanges(); p != 2 || e != 0 {
		t.Fatalf("%d pipelined, %d exclusive: want both pipelined", p, e)
	}
}
