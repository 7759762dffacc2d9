package gateway

import (
	"time"

	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/valyala/fasthttp"
)

// Hooks are a host program's callbacks on the request path (the public
// server package sets them with SetHooks). Every field may be nil, and a
// nil one costs one branch. The gateway recovers a panic in any of them,
// counts it in edgeway_panics_total{where="hook"} and goes on.
type Hooks struct {
	// RequestStats runs on the request's goroutine once a request routed
	// to a function is answered (refusals included). reqBytes and
	// respBytes are the Content-Length values, -1 when the body is
	// streamed (chunked) or has none declared; d ends when the response
	// head is ready, before a streamed body is sent.
	RequestStats func(function string, status int, d time.Duration, reqBytes, respBytes int)
	// AuthFailure runs on the request's goroutine after a request was
	// refused 401 (the response already holds the default refusal, which
	// it may replace). A panic leaves the default refusal.
	AuthFailure func(ctx *fasthttp.RequestCtx, function string, err error)
	// WebSocketOpen runs when a session starts (after the 101), on the
	// session's goroutine.
	WebSocketOpen func(function, requestID string)
	// WebSocketClose runs when a session ends, on its goroutine.
	WebSocketClose func(function, requestID string, end upstream.SessionEnd)
	// WebSocketError runs on the request's goroutine when an upgrade
	// request did not become a session: refused by the gateway, failed on
	// the way to the worker, or answered other than 101 by the function.
	WebSocketError func(function, requestID string, err error)
}

// SetHooks installs the host's hooks. Call it before Serve: the hooks are
// read without synchronisation on the request path.
func (g *Gateway) SetHooks(h Hooks) { g.hooks = h }

// requestStats calls the RequestStats hook (not nil), containing a panic.
func (g *Gateway) requestStats(function string, status int, d time.Duration, reqBytes, respBytes int) {
	defer g.recoverHook()
	g.hooks.RequestStats(function, status, d, reqBytes, respBytes)
}

// authFailure calls the AuthFailure hook (not nil); after a panic the
// default refusal is written again, whatever the hook left.
func (g *Gateway) authFailure(ctx *fasthttp.RequestCtx, function string, err error) {
	defer func() {
		if v := recover(); v != nil {
			observe.Recovered(g.log, observe.PanicHook, v)
			ctx.Response.Reset()
			unauthorizedError(err).write(ctx)
		}
	}()
	g.hooks.AuthFailure(ctx, function, err)
}

// webSocketError calls the WebSocketError hook, if any.
func (g *Gateway) webSocketError(function, requestID string, err error) {
	if g.hooks.WebSocketError == nil {
		return
	}
	defer g.recoverHook()
	g.hooks.WebSocketError(function, requestID, err)
}

func (g *Gateway) recoverHook() {
	if v := recover(); v != nil {
		observe.Recovered(g.log, observe.PanicHook, v)
	}
}

// Handler is the gateway's request handler for a host's own fasthttp
// server (the public server package's Handler).
func (g *Gateway) Handler() fasthttp.RequestHandler { return g.serve }
