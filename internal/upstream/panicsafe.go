package upstream

// heldSlot is what one Proxy call holds, kept on its stack so that a panic
// between Acquire and the slot's release (a bug here, a fasthttp panic on
// a request it cannot write) gives back what it holds: without it every
// panic would keep one of the worker's maxConcurrency slots forever, and
// after enough of them the function would only answer 503 OVERLOADED.
type heldSlot struct {
	returned  bool   // proxy returned: it released or handed off the slot
	handedOff bool   // a response stream owns the connection and the slot
	c         *conn  // the exclusive connection in use
	pc        *pconn // the pipelined connection in use
}

// settlePanic is deferred by Proxy. It does nothing unless proxy is
// panicking; then it closes the connection in use (its state is unknown:
// a pipelined one fails, which wakes every call queued on it, and a body
// writer is stopped and reaped) and gives back the slot. It does not
// recover: the panic goes on to the gateway, which answers 500 INTERNAL.
func (x *heldSlot) settlePanic(w *Worker) {
	if x.returned || x.handedOff {
		return
	}
	switch {
	case x.pc != nil:
		x.pc.fail()
	case x.c != nil:
		x.c.nc.Close()
		if x.c.writing != nil {
			x.c.reapWriter()
		}
	}
	w.release()
}
