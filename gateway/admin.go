package gateway

import (
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
)

// adminPaths are served by the router and never routed to functions, so a
// function called "health" is reachable only under /functions/v1/health.
var adminPaths = []string{"/"}

func isAdminPath(path []byte) bool {
	for _, p := range adminPaths {
		if string(path) == p {
			return true
		}
	}
	return false
}

var statusOK = []byte(`{"status":"ok"}`)

func (g *Gateway) newAdminRouter() *router.Router {
	r := router.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleOPTIONS = false
	r.GET("/", func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentTypeBytes(contentTypeJSON)
		ctx.SetBody(statusOK)
	})
	r.NotFound = func(ctx *fasthttp.RequestCtx) { errNotFound.write(ctx) }
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		ctx.SetContentTypeBytes(contentTypeJSON)
		ctx.SetBodyString(`{"code":"METHOD_NOT_ALLOWED","message":"method not allowed"}`)
	}
	return r
}
