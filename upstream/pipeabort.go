package upstream

import (
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// A client that hangs up while its request waits on a pipelined worker
// connection cannot have that connection closed (see hangup.go): requests
// of other clients are queued on it. Instead every pipelined request
// carries a sequence number in the internal header X-Edgeway-Seq (the
// gateway strips x-edgeway-* from client requests), and a watcher per
// worker looks, every HangupCheck, at the clients of the requests that
// have waited that long; for one that hung up it sends the worker "abort
// <seq>" on the control channel (WorkerOptions.Abort), and the bootstrap
// aborts that request's signal. The exchange itself goes on: the
// function's answer is read in turn and written to a client that is gone,
// and the requests behind it are served as usual.
//
// Deno serves the requests of one connection one at a time, so only the
// head of each pipelined connection is in the function; an abort for a
// request still queued behind it finds nothing to abort in the worker.

// HeaderSeq is the internal request header carrying a pipelined request's
// sequence number for "abort <n>".
const HeaderSeq = "X-Edgeway-Seq"

var hdrSeq = []byte(HeaderSeq)

// maxWatched bounds the requests checked in one pass of the watcher
// (pipelined connections × depth is far below it by default).
const maxWatched = 256

// markForAbort numbers a pipelined request and records its client on cl,
// when aborts are on. Called under pc.wmu, before the request is written.
func (w *Worker) markForAbort(cl *call, req *fasthttp.Request, client net.Conn) {
	cl.client = nil
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
		if recover() != nil {
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

type watched struct {
	client net.Conn
	seq    uint64
}

// checkPipes sends "abort <seq>" for each request that has waited at least
// HangupCheck on a pipelined connection and whose client hung up.
func (w *Worker) checkPipes() {
	var list [maxWatched]watched
	n := 0
	before := time.Now().Add(-w.hangupCheck).UnixNano()
	for i := range w.pipes {
		pc := w.pipes[i].Load()
		if pc == nil || pc.oldest.Load() == 0 {
			continue
		}
		pc.qmu.Lock()
		for c := pc.head; c != nil && n < maxWatched; c = c.next {
			if c.client != nil && c.written <= before {
				list[n] = watched{c.client, c.seq}
				n++
			}
		}
		pc.qmu.Unlock()
	}
	for _, x := range list[:n] {
		rc := rawConn(x.client)
		if rc == nil || !hungUp(rc) {
			continue
		}
		w.sendAbort(x.seq)
		w.forget(x.seq)
	}
}

// forget stops watching the request numbered seq (it was aborted).
func (w *Worker) forget(seq uint64) {
	for i := range w.pipes {
		pc := w.pipes[i].Load()
		if pc == nil {
			continue
		}
		pc.qmu.Lock()
		for c := pc.head; c != nil; c = c.next {
			if c.seq == seq {
				c.client = nil
			}
		}
		pc.qmu.Unlock()
	}
}
