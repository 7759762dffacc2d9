package gateway

import (
	"errors"
	"net"
	"testing"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/VictoriaMetrics/metrics"
)

// panickyConn panics on Read and Write, as a bug in the wrapper's own code
// would; it records whether it was closed.
type panickyConn struct {
	net.Conn
	closed bool
}

func (p *panickyConn) Read([]byte) (int, error)  { panic("read bug") }
func (p *panickyConn) Write([]byte) (int, error) { panic("write bug") }
func (p *panickyConn) Close() error              { p.closed = true; return nil }

// fasthttp calls a connection's Read and Write outside any handler and
// recovers nothing there: a panic must fail the call and close the
// connection, not end the process.
func TestClientConnSurvivesPanics(t *testing.T) {
	panics := metrics.GetOrCreateCounter(`edgeway_panics_total{where="` + observe.PanicClientConn + `"}`)
	for _, tc := range []struct {
		name string
		call func(c *clientConn) (int, error)
	}{
		{"read", func(c *clientConn) (int, error) { return c.Read(make([]byte, 8)) }},
		{"write", func(c *clientConn) (int, error) { return c.Write([]byte("hi")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := panics.Get()
			pc := &panickyConn{}
			c := &clientConn{Conn: pc, set: &connSettings{}}
			n, err := tc.call(c)
			if n != 0 || !errors.Is(err, errConnPanicked) {
				t.Fatalf("got %d, %v; want 0, errConnPanicked", n, err)
			}
			if !pc.closed {
				t.Error("the connection was not closed")
			}
			if panics.Get() != before+1 {
				t.Errorf("edgeway_panics_total{where=%q} went %d -> %d, want +1", observe.PanicClientConn, before, panics.Get())
			}
		})
	}
}
