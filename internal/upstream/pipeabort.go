package upstream

import (
	"net"
	"strconv"
	"time"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/valyala/fasthttp"
)

// A client that hangs up while its request waits on a pipelined worker
// connection cannot have that connection closed (see hangup.go): requests
// of other clients are queued on it. Instead every pipelined request
// carries a sequence number in the internal header X-Edgeway-Seq (the
// gateway strips x-edgeway-* from client requests), and a watcher per
// worker looks, every HangupCheck, at the request at the head of each
// pipelined connection: if it has waited that long without its response
// head and its client hung up, the worker is sent "abort <seq>" on the
// control channel (WorkerOptions.Abort), and the bootstrap aborts that
// request's signal. The exchange itself goes on: the function's answer is
// read in turn and written to a client that is gone, and the requests
// behind it are served as usual.
//
// Deno serves the requests of one connection one at a time, so only the
// head of a pipelined connection can be in the function; a request queued
// behind it is looked at once it is the head. The line is sent again every
// check until the response head comes: the abort may reach the worker
// just before Deno hands it the request (the control channel and the
// request's connection race), and aborting twice does nothing.

// HeaderSeq is the internal request header carrying a pipelined request's
// sequence number for "abort <n>".
const HeaderSeq = "X-Edgeway-Seq"

var hdrSeq = []byte(HeaderSeq)

// markForAbort numbers a pipelined request and records its client on cl,
// when aborts are on. Called under pc.wmu, before the request is written.
func (w *Worker) markForAbort(cl *call, req *fasthttp.Request, client net.Conn) {
	cl.client = nil
	cl.answered.Store(false)
	if w.sendAbort == nil {
		return
	}
	cl.seq = w.seq.Add(1)
	cl.client = client
	var buf [20]byte
	req.Header.SetBytesKV(hdrSeq, strconv.AppendUint(buf[:0], cl.seq, 10))
}

// watchPipes is the watcher goroutine (see the top of this file); it ends
// when the worker exits.
func (w *Worker) watchPipes() {
	defer func() {
		if v := recover(); v != nil {
			recovered(observe.PanicAbortWatch, v)
			go w.watchPipes() // a tick later; nothing is owned across ticks
		}
	}()
	t := time.NewTicker(w.hangupCheck)
	defer t.Stop()
	for {
		select {
		case <-w.exited:
			return
		case <-t.C:
			w.checkPipes()
		}
	}
}

// checkPipes sends "abort <seq>" for the head request of each pipelined
// connection that has waited at least HangupCheck for its response head
// and whose client hung up.
func (w *Worker) checkPipes() {
	before := time.Now().Add(-w.hangupCheck).UnixNano()
	for i := range w.pipes {
		pc := w.pipes[i].Load()
		if pc == nil || pc.oldest.Load() == 0 {
			continue
		}
		var client net.Conn
		var seq uint64
		pc.qmu.Lock()
		if c := pc.head; c != nil && c.client != nil && c.written <= before && !c.answered.Load() {
			client, seq = c.client, c.seq
		}
		pc.qmu.Unlock()
		if client == nil {
			continue
		}
		if rc := rawConn(client); rc != nil && hungUp(rc) {
			w.sendAbort(seq)
		}
	}
}
