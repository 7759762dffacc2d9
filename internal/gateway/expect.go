package gateway

import (
	"github.com/valyala/fasthttp"
)

// expect is the server's ExpectHandler, called for a request with Expect:
// 100-continue before fasthttp sends 100 Continue and reads the body. It
// runs the checks that need only the header (framing, admin paths, CORS
// preflight, unknown function, declared size, auth), so a refused request
// gets its answer without its body ever being asked for: fasthttp then
// answers, sends no 100, does not call serve and closes the connection
// (lingering, since a client may send the body anyway). An accepted request
// continues into serve, which runs every guard again; the rate limit is
// counted there only.
func (g *Gateway) expect(ctx *fasthttp.RequestCtx) int {
	if st, answered := g.precheck(ctx); answered {
		if c := connOf(ctx); c != nil {
			c.lingerOnClose()
		}
		return st
	}
	return fasthttp.StatusContinue
}

// precheck answers what expect refuses; answered reports whether it did.
func (g *Gateway) precheck(ctx *fasthttp.RequestCtx) (status int, answered bool) {
	if g.refuseMalformed(ctx) {
		return ctx.Response.StatusCode(), true
	}
	uri := ctx.Request.Header.RequestURI()
	if g.isAdminPath(pathOnly(uri)) {
		g.admin.Handler(ctx)
		return ctx.Response.StatusCode(), true
	}
	if ctx.IsOptions() && g.cors.Preflight(ctx) {
		return ctx.Response.StatusCode(), true
	}
	name, _, _, ok := splitRoute(uri)
	if !ok {
		errNotFound.write(ctx)
		return errNotFound.status, true
	}
	fn := g.sup.Lookup(name)
	if fn == nil {
		errNotFound.write(ctx)
		return errNotFound.status, true
	}
	if cl := ctx.Request.Header.ContentLength(); cl > 0 && int64(cl) > fn.Config.MaxBodyBytes {
		g.refuse(ctx, fn, errTooLarge)
		return errTooLarge.status, true
	}
	if e, refused := g.checkToken(ctx, fn); refused {
		g.refuseAuth(ctx, fn, e)
		return fasthttp.StatusUnauthorized, true
	}
	return 0, false
}
