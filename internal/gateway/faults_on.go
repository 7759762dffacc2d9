//go:build edgeway_faults

package gateway

// Test-only fault injection, compiled only with `-tags edgeway_faults`:
// the e2e tests build their own binary with the tag to make the gateway
// panic on demand. The released binary is built without it and has no
// code that could panic on request (an e2e test checks it answers 404).

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// faultPanicPath makes the request's handler panic.
const faultPanicPath = "/__edgeway_fault/panic"

// injectFault panics when path asks for it. It runs inside Handle, before
// any routing, like a bug anywhere on the request path would.
func injectFault(path []byte) {
	if bytes.HasPrefix(path, []byte(faultPanicPath)) {
		panic("injected fault: " + string(path))
	}
}

// injectAfterProxyFault panics after the worker answered (the slot given
// back or handed to a response stream, a WebSocket session about to
// start) when the request carries X-Test-Fault: after-proxy.
func injectAfterProxyFault(ctx *fasthttp.RequestCtx) {
	if string(ctx.Request.Header.Peek("X-Test-Fault")) == "after-proxy" {
		panic("injected fault: after the proxy")
	}
}
