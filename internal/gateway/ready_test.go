package gateway

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// loadingTable is a table that reports whether its function set is loaded.
type loadingTable struct {
	fakeFunctions
	ready atomic.Bool
}

func (l *loadingTable) Ready() bool { return l.ready.Load() }

func TestReadyWaitsForTheFunctionSetAndGoesDownOnShutdown(t *testing.T) {
	table := &loadingTable{fakeFunctions: fakeFunctions{}}
	g := New(config.Defaults(), table, Security{}, zerolog.Nop())
	steps := []struct {
		name string
		do   func()
		want int
	}{
		{"function set not loaded", func() {}, 503},
		{"loaded", func() { table.ready.Store(true) }, 200},
		{"shutting down", func() { g.stopping.Store(true) }, 503},
	}
	for _, s := range steps {
		s.do()
		if got := adminGet(g.admin.Handler, pathReady); got != s.want {
			t.Fatalf("%s: /health/ready = %d, want %d", s.name, got, s.want)
		}
	}
	// A table without Ready (the gateway's tests, a fixed set) is ready.
	plain := New(config.Defaults(), fakeFunctions{}, Security{}, zerolog.Nop())
	if got := adminGet(plain.admin.Handler, pathReady); got != 200 {
		t.Fatalf("table without Ready: %d, want 200", got)
	}
}

// With --shutdown-delay, a gateway told to stop answers /health/ready 503
// while it still accepts and serves, until the delay (or the grace) ends.
func TestShutdownDelayKeepsServingWhileNotReady(t *testing.T) {
	opts := config.Defaults()
	opts.ShutdownDelay = time.Hour // ended by the context below
	g := New(opts, fakeFunctions{}, Security{}, zerolog.Nop())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	get := func(path string) (int, error) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + ln.Addr().String() + path)
		req.SetConnectionClose() // a new connection each time: the listener must still accept
		err := fasthttp.DoTimeout(req, resp, 10*time.Second)
		return resp.StatusCode(), err
	}
	if code, err := get(pathReady); err != nil || code != 200 {
		t.Fatalf("before shutdown: %d %v", code, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Shutdown(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !g.stopping.Load() {
		if time.Now().After(deadline) {
			t.Fatal("Shutdown did not start")
		}
		time.Sleep(time.Millisecond)
	}
	for _, step := range []struct {
		path string
		want int
	}{{pathReady, 503}, {pathRoot, 200}} {
		if code, err := get(step.path); err != nil || code != step.want {
			t.Fatalf("during the delay: GET %s = %d %v, want %d", step.path, code, err, step.want)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned during the delay: %v", err)
	default:
	}
	cancel() // the grace ends: the delay stops, the listener closes
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after its context ended")
	}
	if _, err := get(pathRoot); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}
