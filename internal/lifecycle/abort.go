package lifecycle

import (
	"strconv"
	"time"
)

// ctlAbort is the gateway -> worker control line "abort <seq>": the client
// of the pipelined request numbered seq (its X-Edgeway-Seq header) hung up
// before its response started, and the bootstrap aborts that request's
// signal (see upstream/pipeabort.go).
const ctlAbort = "abort "

// abortRequest sends "abort <seq>", called by the worker's pipeline
// watcher. It may run alongside the manager's own control writes: each
// line goes out in one Write (writes on a connection do not interleave), and
// whichever write deadline is in force, each is at most controlWriteTimeout
// away, so neither write can block for long.
func (p *process) abortRequest(seq uint64) {
	if p.ctl == nil {
		return
	}
	var buf [len(ctlAbort) + 21]byte
	line := append(strconv.AppendUint(append(buf[:0], ctlAbort...), seq, 10), '\n')
	p.ctl.SetWriteDeadline(time.Now().Add(controlWriteTimeout))
	p.ctl.Write(line)
}
