package gateway

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"edgeway/config"
	"edgeway/lifecycle"
	"edgeway/upstream"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// fakeFunctions is a one-function registry over a pool the test controls.
type fakeFunctions map[string]*lifecycle.Function

func (f fakeFunctions) Lookup(name []byte) *lifecycle.Function { return f[string(name)] }

// startFakeWorker serves a fixed answer on a Unix socket, standing in for a
// Deno worker so the chain can be measured without Deno.
func startFakeWorker(tb testing.TB, handler fasthttp.RequestHandler) string {
	tb.Helper()
	sock := filepath.Join(tb.TempDir(), "w.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: handler, NoDefaultServerHeader: true}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Shutdown() })
	return sock
}

func newTestGateway(tb testing.TB, sock string) *Gateway {
	tb.Helper()
	opts := config.Defaults()
	pool := upstream.NewPool(upstream.PoolOptions{MaxWorkers: 1, MaxQueue: 10, QueueTimeout: time.Second})
	w := upstream.NewWorker(pool, 1, 0, sock, upstream.WorkerOptions{MaxIdleConns: 4, DialTimeout: time.Second, BufferSize: 16384, ExitWait: time.Second})
	pool.Publish(upstream.Snapshot{Workers: []*upstream.Worker{w}, Total: 1})
	cfg := config.DefaultFunctionConfig(opts)
	fns := fakeFunctions{"hello": &lifecycle.Function{Name: "hello", Config: cfg, Pool: pool}}
	return New(opts, fns, zerolog.Nop())
}

var helloBody = []byte("Hello from a fake worker")

func helloHandler(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain")
	ctx.SetBody(helloBody)
}

func newCtx(uri string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.SetRequestURI(uri)
	req.Header.SetHost("example.com")
	req.Header.Set("User-Agent", "chain-test")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, nil)
	return &ctx
}

func TestChainProxiesToWorker(t *testing.T) {
	var seenURI, seenXFF string
	sock := startFakeWorker(t, func(ctx *fasthttp.RequestCtx) {
		seenURI = string(ctx.Request.Header.RequestURI())
		seenXFF = string(ctx.Request.Header.Peek("X-Forwarded-For"))
		helloHandler(ctx)
	})
	g := newTestGateway(t, sock)
	ctx := newCtx("/functions/v1/hello/x?y=1")
	g.Handle(ctx)
	if ctx.Response.StatusCode() != 200 || string(ctx.Response.Body()) != string(helloBody) {
		t.Fatalf("response %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if seenURI != "/hello/x?y=1" || seenXFF != "127.0.0.1" {
		t.Fatalf("worker saw %q from %q", seenURI, seenXFF)
	}
	ctx = newCtx("/nope")
	g.Handle(ctx)
	if ctx.Response.StatusCode() != 404 || string(ctx.Response.Header.Peek(ErrorHeader)) != CodeNotFound {
		t.Fatalf("unknown function: %d", ctx.Response.StatusCode())
	}
}

// The warm path of the whole chain (route, sanitize, forward headers, pick,
// proxy over a pooled Unix connection, buffered response) must not allocate.
func TestChainWarmPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	sock := startFakeWorker(t, helloHandler)
	g := newTestGateway(t, sock)
	ctx := newCtx("/hello/path?q=1")
	g.Handle(ctx) // warm the connection pool
	allocs := testing.AllocsPerRun(200, func() {
		ctx.Request.SetRequestURI("/hello/path?q=1")
		ctx.Response.Reset()
		g.Handle(ctx)
	})
	if allocs != 0 {
		t.Fatalf("warm request allocates %.1f times", allocs)
	}
	notFound := newCtx("/nope")
	if a := testing.AllocsPerRun(200, func() { g.Handle(notFound) }); a != 0 {
		t.Fatalf("404 allocates %.1f times", a)
	}
}

func BenchmarkChainWarmRequest(b *testing.B) {
	sock := startFakeWorker(b, helloHandler)
	g := newTestGateway(b, sock)
	ctx := newCtx("/functions/v1/hello/path?q=1")
	g.Handle(ctx)
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.SetRequestURI("/functions/v1/hello/path?q=1")
		ctx.Response.Reset()
		g.Handle(ctx)
	}
}

func BenchmarkHandleNotFound(b *testing.B) {
	sock := startFakeWorker(b, helloHandler)
	g := newTestGateway(b, sock)
	ctx := newCtx("/nope/x")
	b.ReportAllocs()
	for b.Loop() {
		g.Handle(ctx)
	}
}
