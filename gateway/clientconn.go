package gateway

import (
	"net"
	"runtime"
	"sync/atomic"
)

// A keep-alive client sends its next request only after it has read the
// response, some microseconds after the gateway wrote it. Reading at once
// finds nothing (EAGAIN): the handler parks and the netpoller has to wake
// it again, which costs a syscall and two trips through the scheduler per
// request. So a client connection yields (runtime.Gosched) before the
// first read that follows a write: the other ready handlers run meanwhile,
// and by the time this one is back its next request has usually arrived.
// With nothing else ready the yield returns at once, so a lone client
// waits no longer (--client-read-yield).

// yieldListener wraps accepted connections in yieldConn.
type yieldListener struct{ net.Listener }

func (l yieldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &yieldConn{Conn: c}, nil
}

// yieldConn is a client connection that yields before reading what
// follows a write.
type yieldConn struct {
	net.Conn
	// wrote is set by Write and cleared by the next Read. Atomic because
	// reads and writes may come from different goroutines: a streamed
	// request body is read while the response is written, and a WebSocket
	// splice pumps each direction on its own.
	wrote atomic.Bool
}

func (c *yieldConn) Write(b []byte) (int, error) {
	if !c.wrote.Load() {
		c.wrote.Store(true)
	}
	return c.Conn.Write(b)
}

func (c *yieldConn) Read(b []byte) (int, error) {
	if c.wrote.Load() {
		c.wrote.Store(false)
		runtime.Gosched()
	}
	return c.Conn.Read(b)
}
