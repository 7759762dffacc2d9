package gateway

import (
	"errors"
	"testing"
	"time"

	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/secure"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

var hookPanics = metrics.GetOrCreateCounter(`edgeway_panics_total{where="` + observe.PanicHook + `"}`)

// refuseAll is an Authenticator that refuses every request.
type refuseAll struct{}

func (refuseAll) Credentials(*fasthttp.RequestCtx) []byte { return []byte("x") }
func (refuseAll) Verify([]byte, time.Time) (*secure.Result, error) {
	return nil, errors.New("no")
}

func TestRequestStatsHook(t *testing.T) {
	sock := startFakeWorker(t, helloHandler)
	g := newTestGateway(t, sock)
	type stats struct {
		fn                string
		status, req, resp int
		positive          bool
	}
	var got []stats
	g.SetHooks(Hooks{RequestStats: func(fn string, status int, d time.Duration, req, resp int) {
		got = append(got, stats{fn, status, req, resp, d > 0})
	}})
	g.Handle(newCtx("/hello"))
	g.Handle(newCtx("/nope")) // not a function: no stats
	if len(got) != 1 || got[0] != (stats{"hello", 200, 0, len(helloBody), true}) {
		t.Fatalf("stats %+v", got)
	}
}

// A panicking hook is contained: the request is answered as without it,
// and the panic is counted.
func TestPanickingRequestStatsHookIsContained(t *testing.T) {
	sock := startFakeWorker(t, helloHandler)
	g := newTestGateway(t, sock)
	g.SetHooks(Hooks{RequestStats: func(string, int, time.Duration, int, int) { panic("hook bug") }})
	before := hookPanics.Get()
	ctx := newCtx("/hello")
	g.serve(ctx)
	if ctx.Response.StatusCode() != 200 || string(ctx.Response.Body()) != string(helloBody) {
		t.Fatalf("response %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if hookPanics.Get() != before+1 {
		t.Fatalf("edgeway_panics_total{where=hook} %d -> %d", before, hookPanics.Get())
	}
}

func TestAuthFailureHook(t *testing.T) {
	sock := startFakeWorker(t, helloHandler)
	for _, c := range []struct {
		name   string
		hook   func(ctx *fasthttp.RequestCtx, fn string, err error)
		status int
		body   string
	}{
		{"custom refusal", func(ctx *fasthttp.RequestCtx, fn string, err error) {
			ctx.Response.Reset()
			ctx.SetStatusCode(403)
			ctx.SetBodyString("go away from " + fn + ": " + err.Error())
		}, 403, "go away from hello: no"},
		{"panic leaves the default", func(ctx *fasthttp.RequestCtx, fn string, err error) {
			ctx.SetBodyString("half written")
			panic("hook bug")
		}, 401, `{"code":"UNAUTHORIZED","message":"malformed token"}`},
	} {
		g := newTestGateway(t, sock)
		g.auth = refuseAll{}
		g.SetHooks(Hooks{AuthFailure: c.hook})
		ctx := newCtx("/hello")
		g.serve(ctx)
		if ctx.Response.StatusCode() != c.status || string(ctx.Response.Body()) != c.body {
			t.Errorf("%s: %d %q", c.name, ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// With a request-stats hook set the warm path still allocates nothing.
func TestRequestStatsHookAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	sock := startFakeWorker(t, helloHandler)
	g := newTestGateway(t, sock)
	n := 0
	g.SetHooks(Hooks{RequestStats: func(string, int, time.Duration, int, int) { n++ }})
	ctx := newCtx("/hello")
	g.serve(ctx)
	allocs := testing.AllocsPerRun(200, func() {
		ctx.Request.SetRequestURI("/hello")
		ctx.Response.Reset()
		g.serve(ctx)
	})
	if allocs != 0 || n < 200 {
		t.Fatalf("%.1f allocations, %d hook calls", allocs, n)
	}
}
