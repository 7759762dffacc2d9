package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestAmbiguousFraming(t *testing.T) {
	cases := []struct {
		raw  string
		want bool
	}{
		{"Host: x\r\nContent-Length: 5\r\n\r\n", false},
		{"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"Host: x\r\nConnection: keep-alive, Upgrade\r\n\r\n", false},
		{"Host: x\r\nConnection: close\r\n\r\n", false},
		{"Host: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"Host: x\r\nX-A: 1\r\n folded\r\n\r\n", true},
		{"Host: x\nX-A: 1\r\n\r\n", true},
		{"Host: x\r\nConnection: Content-Length\r\n\r\n", true},
		{"Host: x\r\nConnection: keep-alive,transfer-encoding\r\n\r\n", true},
		{"Host: x\r\nconnection:  HOST \r\n\r\n", true},
		{"Host: x\r\nConnection: close\r\nConnection: content-length\r\n\r\n", true},
		{"Host: x\r\nConnection: hostname, content-lengthy\r\n\r\n", false},
	}
	for _, c := range cases {
		if got := ambiguousFraming([]byte(c.raw)); got != c.want {
			t.Errorf("%q: %v, want %v", c.raw, got, c.want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { ambiguousFraming([]byte(cases[9].raw)) }); a != 0 && !raceEnabled {
		t.Fatalf("allocates %.1f times", a)
	}
}

// FuzzAmbiguousFraming: a Connection value naming a framing header, CL with
// TE, or a fold is always reported, whatever surrounds it; nothing panics.
func FuzzAmbiguousFraming(f *testing.F) {
	f.Add([]byte("Host: x\r\nConnection: Content-Length\r\n\r\n"))
	f.Add([]byte("Host: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Add([]byte("Host: x\r\nX-A: 1\r\n folded\r\n\r\n"))
	f.Add([]byte("Host: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := ambiguousFraming(raw)
		// Appending a Connection line naming Transfer-Encoding to a
		// complete header block must always be caught.
		if bytes.HasSuffix(raw, []byte("\r\n")) && !bytes.Contains(raw, []byte("\n\n")) {
			ext := append(append([]byte{}, raw...), "Connection: transfer-encoding\r\n"...)
			if !ambiguousFraming(ext) {
				t.Fatalf("%q: Connection naming framing missed", ext)
			}
		}
		_ = got
	})
}

// A gateway error written after Connection: close keeps it.
func TestErrorWriteKeepsConnectionClose(t *testing.T) {
	var ctx fasthttp.RequestCtx
	ctx.Response.SetConnectionClose()
	errTooLarge.write(&ctx)
	if !ctx.Response.ConnectionClose() {
		t.Fatal("Connection: close lost by the error write")
	}
	var ctx2 fasthttp.RequestCtx
	errNotFound.write(&ctx2)
	if ctx2.Response.ConnectionClose() {
		t.Fatal("an error write closed a connection nobody asked to close")
	}
}

// serveOn runs the gateway's server on one accepted connection.
func serveOn(t *testing.T, g *Gateway) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	t.Cleanup(func() { g.srv.Shutdown() })
	return ln.Addr().String()
}

// exchange writes req, half-closes and returns every response status.
func exchange(t *testing.T, addr, req string) []int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(req))
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, _ := io.ReadAll(c)
	var st []int
	br := bufio.NewReader(bytes.NewReader(b))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return st
		}
		io.Copy(io.Discard, resp.Body)
		st = append(st, resp.StatusCode)
	}
}

func TestServeSettlesUnreadBodies(t *testing.T) {
	g := newTestGateway(t, startFakeWorker(t, helloHandler))
	addr := serveOn(t, g)
	body := bytes.Repeat([]byte("GET /hello/smuggled HTTP/1.1\r\nHost: x\r\nX-P: pppppppppppppppp\r\n\r\n"), 512)
	head := "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: " + itoaTest(len(body)) + "\r\n\r\n"
	next := "GET /hello/next HTTP/1.1\r\nHost: x\r\n\r\n"
	if st := exchange(t, addr, head+string(body)+next); len(st) != 2 || st[0] != 404 || st[1] != 200 {
		t.Fatalf("statuses %v, want [404 200]: the body discarded, the connection kept", st)
	}
	// Over --discard-body-max: 404 and close, nothing of the body served.
	g.opts.DiscardBodyMax = 1024
	if st := exchange(t, addr, head+string(body)+next); len(st) != 1 || st[0] != 404 {
		t.Fatalf("statuses %v, want [404] and a close", st)
	}
}

// After BodyDone(false) the connection serves nothing more: a request
// parsed on it is refused before routing, reads end, and Close lingers.
func TestPoisonedConnection(t *testing.T) {
	server, client := acceptYield(t)
	server.set.lingeringTime, server.set.lingeringTimeout = 5*time.Second, time.Second
	server.BodyInFlight()
	if server.flags.Load()&connBodyInFlight == 0 {
		t.Fatal("BodyInFlight not recorded")
	}
	server.BodyDone(true)
	if f := server.flags.Load(); f != 0 {
		t.Fatalf("flags %b after a consumed body", f)
	}
	server.BodyInFlight()
	server.BodyDone(false)
	client.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	if n, err := server.Read(make([]byte, 64)); n != 0 || err != io.EOF {
		t.Fatalf("poisoned read: %d, %v", n, err)
	}
	g := newTestGateway(t, startFakeWorker(t, helloHandler))
	var ctx fasthttp.RequestCtx
	ctx.Init2(server, nil, false)
	ctx.Request.SetRequestURI("/hello/x")
	g.serve(&ctx)
	if ctx.Response.StatusCode() != 400 || !ctx.Response.ConnectionClose() {
		t.Fatalf("poisoned request answered %d (close %v)", ctx.Response.StatusCode(), ctx.Response.ConnectionClose())
	}
	// Close lingers: it half-closes, the client sees EOF, and Close
	// returns once the client closes.
	done := make(chan struct{})
	go func() { server.Close(); close(done) }()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(client); err != nil {
		t.Fatalf("client did not see the half-close: %v", err)
	}
	client.Close()
	<-done
}

// A client that never reads makes a write fail after --client-write-timeout.
func TestClientWriteTimeout(t *testing.T) {
	server, _ := acceptYield(t)
	server.set.writeTimeout = 200 * time.Millisecond
	server.set.writeResolution = int64(server.set.writeTimeout / 8)
	chunk := make([]byte, 1<<20)
	before := clientWriteTimeouts.Get()
	for i := 0; ; i++ {
		if _, err := server.Write(chunk); err != nil {
			break
		}
		if i > 4096 {
			t.Fatal("4 GiB written to a client that reads nothing")
		}
	}
	if clientWriteTimeouts.Get() != before+1 {
		t.Fatal("write timeout not counted")
	}
}

func itoaTest(n int) string { return string(fasthttp.AppendUint(nil, n)) }

// Through a real client connection (write deadline, settle, yield), a warm
// GET and a small POST still allocate nothing.
func TestServeOverClientConnAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	g := newTestGateway(t, startFakeWorker(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(ctx.Request.Body()) }), pipelineOn)
	server, client := acceptYield(t)
	server.set.writeTimeout = time.Minute
	server.set.writeResolution = int64(time.Minute / 8)
	go io.Copy(io.Discard, client)
	var ctx fasthttp.RequestCtx
	ctx.Init2(server, nil, false)
	ctx.Request.Header.SetHost("example.com")
	body := bytes.Repeat([]byte("x"), 1024)
	rd := bytes.NewReader(body)
	get := func() {
		ctx.Request.Header.SetMethod("GET")
		ctx.Request.SetRequestURI("/hello/x")
		ctx.Response.Reset()
		g.serve(&ctx)
		server.Write(helloBody)
	}
	post := func() {
		rd.Reset(body)
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetBodyStream(rd, len(body))
		ctx.Request.SetRequestURI("/hello/x")
		ctx.Response.Reset()
		g.serve(&ctx)
	}
	get()
	post()
	if a := testing.AllocsPerRun(200, get); a != 0 {
		t.Fatalf("GET allocates %.1f times", a)
	}
	if a := testing.AllocsPerRun(200, post); a != 0 {
		t.Fatalf("POST allocates %.1f times", a)
	}
	if !bytes.Equal(ctx.Response.Body(), body) {
		t.Fatalf("echo: %d bytes", len(ctx.Response.Body()))
	}
}
