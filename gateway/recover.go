package gateway

import (
	"edgeway/observe"

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
func (g *Gateway) recoverPanic(ctx *fasthttp.RequestCtx) {
	v := recover()
	if v == nil {
		return
	}
	observe.Recovered(g.log, observe.PanicRequest, v)
	answerPanic(ctx)
}

// answerPanic replaces whatever the handler left with 500 INTERNAL and
// closes the connection; a hijack the handler asked for is cancelled.
func answerPanic(ctx *fasthttp.RequestCtx) {
	ctx.Hijack(nil)
	ctx.HijackSetNoResponse(false)
	errInternal.write(ctx)
	ctx.SetConnectionClose()
}

// recoverAdminPanic is the admin router's PanicHandler.
func (g *Gateway) recoverAdminPanic(ctx *fasthttp.RequestCtx, v any) {
	observe.Recovered(g.log, observe.PanicAdmin, v)
	answerPanic(ctx)
}
