package gateway

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// acceptYield returns both ends of a loopback TCP connection, the server
// end accepted through clientListener.
func acceptYield(t *testing.T) (server *clientConn, client net.Conn) {
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
	c, err := clientListener{Listener: ln, set: &connSettings{yield: true}}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); client.Close() })
	yc, ok := c.(*clientConn)
	if !ok {
		t.Fatalf("accepted %T, want *clientConn", c)
	}
	return yc, client
}

func TestYieldConnIsTransparent(t *testing.T) {
	server, client := acceptYield(t)
	if _, ok := server.RemoteAddr().(*net.TCPAddr); !ok {
		t.Fatalf("RemoteAddr is %T, want *net.TCPAddr (client IPs come from it)", server.RemoteAddr())
	}
	var ctx fasthttp.RequestCtx
	ctx.Init2(server, nil, false)
	buf := make([]byte, 5)
	for i := 0; i < 3; i++ {
		if _, err := client.Write([]byte("ping!")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping!" {
			t.Fatalf("round %d: server read %q, %v", i, buf, err)
		}
		if server.armed.Load() {
			t.Fatalf("round %d: armed after a read", i)
		}
		if _, err := server.Write([]byte("pong!")); err != nil {
			t.Fatal(err)
		}
		if server.armed.Load() {
			t.Fatalf("round %d: a write armed the yield (it must fire once per request, not inside streamed exchanges)", i)
		}
		armYield(&ctx) // the request is done
		if !server.armed.Load() {
			t.Fatalf("round %d: armYield did not arm the connection", i)
		}
		if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong!" {
			t.Fatalf("round %d: client read %q, %v", i, buf, err)
		}
	}
}

// A streamed body may still be read when the handler returns and arms the
// yield: both directions at once must stay correct (and race-free under -race).
func TestYieldConnReadsAndWritesConcurrently(t *testing.T) {
	server, client := acceptYield(t)
	const n = 1 << 16
	up, down := bytes.Repeat([]byte("u"), n), bytes.Repeat([]byte("d"), n)
	var wg sync.WaitGroup
	var gotUp, gotDown []byte
	errs := make([]error, 4)
	wg.Add(4)
	go func() { defer wg.Done(); _, errs[0] = client.Write(up) }()
	go func() {
		defer wg.Done()
		var ctx fasthttp.RequestCtx
		ctx.Init2(server, nil, false)
		_, errs[1] = server.Write(down)
		armYield(&ctx)
	}()
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

// The socket's own ReadFrom/WriteTo stay reachable through the wrapper
// (bufio.Writer streams large bodies through ReadFrom), and carry the data.
func TestYieldConnKeepsCopyFastPaths(t *testing.T) {
	server, client := acceptYield(t)
	var c net.Conn = server
	if _, ok := c.(io.ReaderFrom); !ok {
		t.Fatal("clientConn hides the socket's ReadFrom")
	}
	if _, ok := c.(io.WriterTo); !ok {
		t.Fatal("clientConn hides the socket's WriteTo")
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
	done := make(chan error, 1)
	go func() {
		_, err := server.ReadFrom(bytes.NewReader(body))
		server.Conn.(*net.TCPConn).CloseWrite()
		done <- err
	}()
	got, err := io.ReadAll(client)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("client got %d bytes (intact %v), %v", len(got), bytes.Equal(got, body), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() {
		client.Write(body)
		client.(*net.TCPConn).CloseWrite()
	}()
	var sink bytes.Buffer
	if _, err := server.WriteTo(&sink); err != nil || !bytes.Equal(sink.Bytes(), body) {
		t.Fatalf("WriteTo got %d bytes (intact %v), %v", sink.Len(), bytes.Equal(sink.Bytes(), body), err)
	}
}
