package gateway

import (
	"edgeway.dev/edgeway/internal/observe"

	"github.com/valyala/fasthttp"
)

// CodeInternal is the error code of a request whose handler panicked.
const CodeInternal = "INTERNAL"

var errInternal = newError(fasthttp.StatusInternalServerError, CodeInternal, "internal error")

// recoverPanic is deferred first in serve: fasthttp does not recover a
// handler's panic, and one panic would end the process and, with it, every
// worker (they die with the gateway). The request is answered 500 INTERNAL
// on a connection that is then closed (its state, a body half read, a
// pipelined request, is unknown), and the panic is counted in
// edgeway_panics_total{where="request"} and logged (its stack once per
// code site, see observe.Recovered).
//
// A streamed response in progress is closed by the error's reset, which
// gives its worker slot back.
//
// A WebSocket whose handshake the function accepted (101, the hijack
// handler installed) is left to start: the panic came after the worker
// answered (in metrics, logging), and cancelling the hijack would leak
// the session's slots and worker connection, which its handler gives back.
func (g *Gateway) recoverPanic(ctx *fasthttp.RequestCtx) {
	v := recover()
	if v == nil {
		return
	}
	observe.Recovered(g.log, observe.PanicRequest, v)
	if ctx.Hijacked() && ctx.Response.StatusCode() == fasthttp.StatusSwitchingProtocols {
		return
	}
	answerPanic(ctx)
}

// answerPanic replaces whatever the handler left with 500 INTERNAL and
// closes the connection, lingering like the other refusals that leave a
// body unread: a client still sending its body (the panic may come while
// it is copied to the worker) reads the 500 instead of a reset. A hijack
// the handler asked for is cancelled.
func answerPanic(ctx *fasthttp.RequestCtx) {
	ctx.Hijack(nil)
	ctx.HijackSetNoResponse(false)
	refuseAndClose(ctx, errInternal)
}

// recoverAdminPanic is the admin router's PanicHandler.
func (g *Gateway) recoverAdminPanic(ctx *fasthttp.RequestCtx, v any) {
	observe.Recovered(g.log, observe.PanicAdmin, v)
	answerPanic(ctx)
}
