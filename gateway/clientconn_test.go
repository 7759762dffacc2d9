package gateway

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// acceptYield returns both ends of a loopback TCP connection, the server
// end accepted through yieldListener.
func acceptYield(t *testing.T) (server *yieldConn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := yieldListener{ln}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); client.Close() })
	yc, ok := c.(*yieldConn)
	if !ok {
		t.Fatalf("accepted %T, want *yieldConn", c)
	}
	return yc, client
}

func TestYieldConnIsTransparent(t *testing.T) {
	server, client := acceptYield(t)
	if _, ok := server.RemoteAddr().(*net.TCPAddr); !ok {
		t.Fatalf("RemoteAddr is %T, want *net.TCPAddr (client IPs come from it)", server.RemoteAddr())
	}
	buf := make([]byte, 5)
	for i := 0; i < 3; i++ {
		if _, err := client.Write([]byte("ping!")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping!" {
			t.Fatalf("round %d: server read %q, %v", i, buf, err)
		}
		if server.wrote.Load() {
			t.Fatalf("round %d: wrote still set after a read", i)
		}
		if _, err := server.Write([]byte("pong!")); err != nil {
			t.Fatal(err)
		}
		if !server.wrote.Load() {
			t.Fatalf("round %d: a write did not arm the yield", i)
		}
		if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong!" {
			t.Fatalf("round %d: client read %q, %v", i, buf, err)
		}
	}
}

// A streamed body is read while the response is written: both directions
// at once must stay correct (and race-free under -race).
func TestYieldConnReadsAndWritesConcurrently(t *testing.T) {
	server, client := acceptYield(t)
	const n = 1 << 16
	up, down := bytes.Repeat([]byte("u"), n), bytes.Repeat([]byte("d"), n)
	var wg sync.WaitGroup
	var gotUp, gotDown []byte
	errs := make([]error, 4)
	wg.Add(4)
	go func() { defer wg.Done(); _, errs[0] = client.Write(up) }()
	go func() { defer wg.Done(); _, errs[1] = server.Write(down) }()
	go func() { defer wg.Done(); gotUp = make([]byte, n); _, errs[2] = io.ReadFull(server, gotUp) }()
	go func() { defer wg.Done(); gotDown = make([]byte, n); _, errs[3] = io.ReadFull(client, gotDown) }()
	wg.Wait()
	if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
		t.Fatalf("up intact %v, down intact %v, errors %v", bytes.Equal(gotUp, up), bytes.Equal(gotDown, down), errs)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}
