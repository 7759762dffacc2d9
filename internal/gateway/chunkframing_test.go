package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// serveChunked runs a fasthttp server (streamed bodies, a read buffer of
// buf bytes) behind clientListener whose handler reads the chunked body as
// upstream's writer does (BodyData after each read) and answers 200 with
// the body's length, or 400 with the error. It returns the address.
func serveChunked(t *testing.T, buf int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	set := &connSettings{readBuffer: buf, maxChunkFraming: 4 * int64(buf)}
	srv := &fasthttp.Server{StreamRequestBody: true, ReadBufferSize: buf, Handler: func(ctx *fasthttp.RequestCtx) {
		watchChunked(ctx)
		defer unwatchChunked(ctx)
		c := connOf(ctx)
		p := make([]byte, 32<<10)
		n := 0
		for {
			m, err := ctx.RequestBodyStream().Read(p)
			n += m
			if m > 0 {
				c.BodyData()
			}
			if err == io.EOF {
				ctx.SetBodyString(strconv.Itoa(n))
				return
			}
			if err != nil {
				ctx.SetStatusCode(400)
				ctx.SetBodyString(err.Error())
				ctx.SetConnectionClose()
				return
			}
		}
	}}
	go srv.Serve(clientListener{Listener: ln, set: set})
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

func TestChunkFramingIsBounded(t *testing.T) {
	const buf = 1024
	addr := serveChunked(t, buf)
	chunks := func(n, ext int, data string) string {
		e := strings.Repeat("a", ext)
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString(strconv.FormatInt(int64(len(data)), 16) + ";" + e + "\r\n" + data + "\r\n")
		}
		return b.String() + "0\r\n\r\n"
	}
	cases := []struct {
		name   string
		body   string
		status int
		length int
		// bound: refused by the framing bound (a trailer section over the
		// read buffer is refused by fasthttp itself: its Peek is bounded)
		bound bool
	}{
		{"no extensions", chunks(10, 0, "hello"), 200, 50, false},
		{"extensions of a read buffer each, many chunks", chunks(200, buf-16, "hello"), 200, 1000, false},
		{"one-byte chunks, many", chunks(20000, 0, "x"), 200, 20000, false},
		{"large chunks", chunks(8, 0, strings.Repeat("d", 40000)), 200, 320000, false},
		{"one extension of five buffers", chunks(1, 5*buf, "hello"), 400, 0, true},
		{"extensions of five buffers in a later chunk", strings.TrimSuffix(chunks(3, 0, "hello"), "0\r\n\r\n") + chunks(1, 5*buf, "hello"), 400, 0, true},
		{"a trailer section past the bound", "5\r\nhello\r\n0\r\n" + strings.Repeat("X-T: "+strings.Repeat("t", 100)+"\r\n", 60) + "\r\n", 400, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+c.body)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status || (c.status == 200 && string(got) != strconv.Itoa(c.length)) {
				t.Fatalf("%d %q, want %d (length %d)", resp.StatusCode, got, c.status, c.length)
			}
			if c.status == 400 && c.bound && !strings.Contains(string(got), errChunkFraming.Error()) {
				t.Fatalf("refused for %q, want the framing bound", got)
			}
		})
	}
}
