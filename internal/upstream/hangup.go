package upstream

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// A client that hangs up while its request waits for the response head is
// noticed, so the function stops working for nobody: Deno aborts a
// request's signal when its connection closes, and closing the worker
// connection is the only way to tell it. Watching is done without reading
// from the client (its bytes, a pipelined request or the rest of a body,
// belong to the gateway): once the request has waited HangupCheck, the
// wait for the first byte of the response head is cut every HangupCheck
// to poll the client's socket for a hang-up. Quick answers (nearly all)
// cost one read deadline more and no system call. This is for exclusive
// worker connections: closing a pipelined one would fail the requests
// queued behind, so there the worker is asked to abort the request instead
// (pipeabort.go).

// errClientGone: the client hung up before the response head came; the
// gateway answers it like a client body error (not the function's fault,
// not counted in the circuit breaker), to a connection that is gone.
var errClientGone = fmt.Errorf("upstream: client hung up before the response: %w", ErrClientBody)

// awaitHead waits until the first byte of the response head is buffered,
// checking the client every w.hangupCheck, and leaves the connection's read
// deadline at deadline. It returns errClientGone when the client hung up,
// and nil (the reader then meets the error itself) on anything else.
func (w *Worker) awaitHead(c *conn, client net.Conn, deadline time.Time) error {
	if w.hangupCheck <= 0 || c.br.Buffered() > 0 {
		return nil
	}
	next := time.Now().Add(w.hangupCheck)
	if !next.Before(deadline) {
		return nil
	}
	var rc syscall.RawConn
	for {
		c.nc.SetReadDeadline(next)
		_, err := c.br.Peek(1)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			c.nc.SetReadDeadline(deadline)
			return nil
		}
		if rc == nil {
			if rc = rawConn(client); rc == nil {
				c.nc.SetReadDeadline(deadline)
				return nil
			}
		}
		if hungUp(rc) {
			return errClientGone
		}
		if next = time.Now().Add(w.hangupCheck); !next.Before(deadline) {
			c.nc.SetReadDeadline(deadline)
			return nil
		}
	}
}

// rawConn finds the socket under a client connection, through wrappers
// that expose it with NetConn (as crypto/tls does).
func rawConn(c net.Conn) syscall.RawConn {
	for i := 0; i < 8 && c != nil; i++ {
		if sc, ok := c.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}
