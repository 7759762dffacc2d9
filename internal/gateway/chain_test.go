package gateway

import (
	"bytes"
	"net"
	"path/filepath"
	"testing"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/guard"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/routable"
	"edgeway.dev/edgeway/internal/secure"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/cristalhq/jwt/v5"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// fakeFunctions is a one-function registry over a pool the test controls.
type fakeFunctions map[string]*routable.Function

func (f fakeFunctions) Lookup(name []byte) *routable.Function { return f[string(name)] }

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

var (
	pipelineOff = upstream.PipelineOptions{}
	pipelineOn  = upstream.PipelineOptions{Conns: 2, Depth: 32, MaxAge: 10 * time.Millisecond, Slow: 50 * time.Millisecond, SlowCooldown: 30 * time.Second}
)

func newTestGateway(tb testing.TB, sock string, pipe ...upstream.PipelineOptions) *Gateway {
	tb.Helper()
	opts := config.Defaults()
	po := upstream.PoolOptions{MaxWorkers: 1, MaxQueue: 10, QueueTimeout: time.Second}
	if len(pipe) > 0 {
		po.Pipeline = pipe[0]
	}
	pool := upstream.NewPool(po)
	// As in production: pipelined requests are numbered for aborts.
	w := upstream.NewWorker(pool, 1, 0, sock, upstream.WorkerOptions{MaxIdleConns: 4, DialTimeout: time.Second, BufferSize: 16384, ExitWait: time.Second,
		HangupCheck: time.Second, Abort: func(uint64) {}})
	pool.Publish(upstream.Snapshot{Workers: []*upstream.Worker{w}, Total: 1})
	cfg := config.DefaultFunctionConfig(opts)
	m := observe.NewFunctionMetrics("hello", observe.Gauges{})
	tb.Cleanup(m.Unregister)
	fn := &routable.Function{Name: "hello", Config: cfg, Pool: pool, Metrics: m}
	routable.NewGuards(fn)
	fn.RateLimiter = nil // the benchmark is one client
	fns := fakeFunctions{"hello": fn}
	opts.AccessLogSample = 0
	return New(opts, fns, Security{}, zerolog.Nop())
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
// proxy over a pooled or pipelined Unix connection, buffered response) must
// not allocate.
func TestChainWarmPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	sock := startFakeWorker(t, helloHandler)
	for name, pipe := range map[string]upstream.PipelineOptions{"exclusive": pipelineOff, "pipelined": pipelineOn} {
		g := newTestGateway(t, sock, pipe)
		ctx := newCtx("/hello/path?q=1")
		g.Handle(ctx) // warm the connection pool
		allocs := testing.AllocsPerRun(200, func() {
			ctx.Request.SetRequestURI("/hello/path?q=1")
			ctx.Response.Reset()
			g.serve(ctx) // the server's entry point: Handle, then the read yield is armed
		})
		if allocs != 0 {
			t.Fatalf("%s: warm request allocates %.1f times", name, allocs)
		}
		if string(ctx.Response.Body()) != string(helloBody) {
			t.Fatalf("%s: body %q", name, ctx.Response.Body())
		}
		p := g.sup.Lookup([]byte("hello")).Pool
		if piped, excl := p.Exchanges(); (pipe.Conns > 0) != (piped > 0) {
			t.Fatalf("%s: %d pipelined, %d exclusive", name, piped, excl)
		}
	}
	g := newTestGateway(t, sock)
	notFound := newCtx("/nope")
	if a := testing.AllocsPerRun(200, func() { g.Handle(notFound) }); a != 0 {
		t.Fatalf("404 allocates %.1f times", a)
	}
}

// A small streamed body (what fasthttp hands over for a POST) is read into
// memory and pipelined, still without allocating.
func TestChainPipelinesSmallBodiesWithoutAllocating(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	sock := startFakeWorker(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(ctx.Request.Body()) })
	g := newTestGateway(t, sock, pipelineOn)
	body := bytes.Repeat([]byte("0123456789abcdef"), 64)
	rd := bytes.NewReader(body)
	// A real client connection: reading the body sets its read deadline
	// (--body-read-timeout).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var ctx fasthttp.RequestCtx
	ctx.Init2(client, nil, false)
	ctx.Request.Header.SetHost("example.com")
	ctx.Request.Header.SetMethod("POST")
	send := func() {
		rd.Reset(body)
		ctx.Request.SetBodyStream(rd, len(body))
		ctx.Request.SetRequestURI("/hello/echo")
		ctx.Response.Reset()
		g.Handle(&ctx)
	}
	send()
	if allocs := testing.AllocsPerRun(200, send); allocs != 0 {
		t.Fatalf("pipelined POST allocates %.1f times", allocs)
	}
	if !bytes.Equal(ctx.Response.Body(), body) {
		t.Fatalf("echo: %d bytes, want %d", len(ctx.Response.Body()), len(body))
	}
	if piped, excl := g.sup.Lookup([]byte("hello")).Pool.Exchanges(); piped == 0 || excl != 0 {
		t.Fatalf("%d pipelined, %d exclusive", piped, excl)
	}
}

func BenchmarkChainWarmRequest(b *testing.B) {
	sock := startFakeWorker(b, helloHandler)
	for name, pipe := range map[string]upstream.PipelineOptions{"exclusive": pipelineOff, "pipelined": pipelineOn} {
		b.Run(name, func(b *testing.B) {
			g := newTestGateway(b, sock, pipe)
			ctx := newCtx("/functions/v1/hello/path?q=1")
			g.Handle(ctx)
			b.ReportAllocs()
			for b.Loop() {
				ctx.Request.SetRequestURI("/functions/v1/hello/path?q=1")
				ctx.Response.Reset()
				g.Handle(ctx)
			}
		})
	}
}

// Concurrent requests through the pipelined chain: several in flight per
// connection, batched writes.
func BenchmarkChainParallelPipelined(b *testing.B) {
	sock := startFakeWorker(b, helloHandler)
	g := newTestGateway(b, sock, pipelineOn)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		ctx := newCtx("/hello")
		for pb.Next() {
			ctx.Request.SetRequestURI("/hello")
			ctx.Response.Reset()
			g.Handle(ctx)
			if ctx.Response.StatusCode() != 200 {
				b.Fatalf("status %d", ctx.Response.StatusCode())
			}
		}
	})
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

// The full chain with every guard on (CORS, JWT auth from a cached token,
// rate limit, breaker) stays allocation-free on a warm request.
func TestChainWithAllGuardsAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	sock := startFakeWorker(t, helloHandler)
	g := newTestGateway(t, sock, pipelineOn)
	secret := []byte("a-test-secret-that-is-long-enough-0123456789")
	v, err := secure.NewVerifier(secure.VerifierOptions{Secret: secret, CacheSize: 16, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	signer, _ := jwt.NewSignerHS(jwt.HS256, secret)
	tok, err := jwt.NewBuilder(signer).Build(jwt.RegisteredClaims{Subject: "user-1", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	g.auth = &JWTAuth{Verifier: v}
	g.cors = guard.NewCORS(guard.CORSOptions{Origins: []string{"https://app.example"}})
	fn := g.sup.Lookup([]byte("hello"))
	fn.RateLimiter = guard.NewRateLimiter(guard.RateLimitOptions{RPM: 1 << 30})
	ctx := newCtx("/hello")
	auth := "Bearer " + tok.String()
	run := func() {
		ctx.Request.SetRequestURI("/hello")
		ctx.Request.Header.Set("Authorization", auth)
		ctx.Request.Header.Set("Origin", "https://app.example")
		ctx.Response.Reset()
		g.Handle(ctx)
	}
	run()
	if ctx.Response.StatusCode() != 200 || string(ctx.Response.Header.Peek("Access-Control-Allow-Origin")) != "https://app.example" {
		t.Fatalf("status %d, headers %s", ctx.Response.StatusCode(), ctx.Response.Header.String())
	}
	if a := testing.AllocsPerRun(200, run); a != 0 {
		t.Fatalf("warm request through every guard allocates %.1f times", a)
	}
}

func BenchmarkChainAllGuards(b *testing.B) {
	sock := startFakeWorker(b, helloHandler)
	g := newTestGateway(b, sock, pipelineOn)
	secret := []byte("a-test-secret-that-is-long-enough-0123456789")
	v, _ := secure.NewVerifier(secure.VerifierOptions{Secret: secret, CacheSize: 16, Log: zerolog.Nop()})
	defer v.Close()
	signer, _ := jwt.NewSignerHS(jwt.HS256, secret)
	tok, _ := jwt.NewBuilder(signer).Build(jwt.RegisteredClaims{Subject: "user-1", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	g.auth = &JWTAuth{Verifier: v}
	g.cors = guard.NewCORS(guard.CORSOptions{Origins: []string{"https://app.example"}})
	g.sup.Lookup([]byte("hello")).RateLimiter = guard.NewRateLimiter(guard.RateLimitOptions{RPM: 1 << 30})
	ctx := newCtx("/hello")
	auth := "Bearer " + tok.String()
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.SetRequestURI("/hello")
		ctx.Request.Header.Set("Authorization", auth)
		ctx.Request.Header.Set("Origin", "https://app.example")
		ctx.Response.Reset()
		g.Handle(ctx)
	}
}
