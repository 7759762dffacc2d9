package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
)

// closeWait is how long a test waits for the server to close a
// connection: generous, the timeouts under test are much shorter.
const closeWait = 60 * time.Second

func serveAdminOn(t *testing.T, opts config.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.AdminListen = ln.Addr().String()
	g := New(opts, fakeFunctions{}, Security{}, zerolog.Nop())
	go g.ServeAdmin(ln)
	t.Cleanup(func() { g.adminSrv.Shutdown() })
	return ln.Addr().String()
}

// waitClosed reads until the server closes c; it fails the test when
// closeWait passes first (the connection was held).
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(closeWait))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: the admin listener still holds the connection after %s", what, closeWait)
	}
}

// A client of --admin-listen that sends half a header, or opens a
// connection and sends nothing, or stays idle after a request, is
// disconnected after the admin listener's timeouts.
func TestAdminListenerDropsSlowAndIdleClients(t *testing.T) {
	opts := config.Defaults()
	opts.AdminReadHeaderTimeout = 300 * time.Millisecond
	opts.AdminIdleConnTimeout = 300 * time.Millisecond
	addr := serveAdminOn(t, opts)
	for _, tc := range []struct {
		name string
		send string
	}{
		{"half a header", "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "},
		{"nothing", ""},
		{"idle after a request", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"a body that never comes", "POST /deploy HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, c, tc.name)
		})
	}
}

// --admin-max-conns bounds the connections the admin listener serves at
// once: one more is refused while they are held.
func TestAdminListenerMaxConns(t *testing.T) {
	opts := config.Defaults()
	opts.AdminMaxConns = 1
	addr := serveAdminOn(t, opts)
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	// A full request proves the server took the first connection.
	held.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
	held.SetReadDeadline(time.Now().Add(closeWait))
	if _, err := held.Read(make([]byte, 512)); err != nil {
		t.Fatal(err)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
	extra.SetReadDeadline(time.Now().Add(closeWait))
	b, _ := io.ReadAll(extra)
	if len(b) < 12 || string(b[9:12]) != "503" {
		t.Fatalf("a connection over --admin-max-conns got %q, want a 503 and a close", b)
	}
}
