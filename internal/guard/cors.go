package guard

import (
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// CORS defaults.
const (
	// DefaultCORSAllowMethods is sent in Access-Control-Allow-Methods when
	// CORSOptions.AllowMethods is empty.
	DefaultCORSAllowMethods = "GET, POST, PUT, PATCH, DELETE, OPTIONS"

	// DefaultCORSMaxAge is how long browsers may cache a preflight answer
	// when CORSOptions.MaxAge is zero.
	DefaultCORSMaxAge = 86400 * time.Second

	// AnyOrigin in CORSOptions.Origins allows every origin.
	AnyOrigin = "*"
)

// ErrorHeader marks a response the gateway made itself; it must match the
// gateway package's ErrorHeader.
const ErrorHeader = "x-edgeway-error"

// CodeCORSOriginNotAllowed is the error code of a refused preflight.
const CodeCORSOriginNotAllowed = "CORS_ORIGIN_NOT_ALLOWED"

// CORSOptions configures CORS.
type CORSOptions struct {
	// Origins lists the allowed origins, compared exactly with the Origin
	// request header ("https://app.example.com"). AnyOrigin allows all.
	// Empty disables CORS handling: NewCORS returns nil.
	Origins []string

	// AllowMethods is the Access-Control-Allow-Methods value of preflight
	// answers. Empty means DefaultCORSAllowMethods.
	AllowMethods string

	// AllowHeaders is the Access-Control-Allow-Headers value of preflight
	// answers. Empty allows what the preflight asks for: its
	// Access-Control-Request-Headers is echoed (with Vary on it), as a
	// function's own `_shared/cors.ts` would allow it, so headers a client
	// library adds (traceparent, baggage, x-retry-count...) are never
	// refused for an allowed origin.
	AllowHeaders string

	// ExposeHeaders is the Access-Control-Expose-Headers value of allowed
	// responses. Empty sends none (and keeps the function's own).
	ExposeHeaders string

	// MaxAge is sent, in whole seconds, as Access-Control-Max-Age in
	// preflight answers. Zero means DefaultCORSMaxAge; negative sends none.
	MaxAge time.Duration
}

// CORS answers preflight requests and adds CORS headers to responses for
// one set of allowed origins. It is immutable and safe for concurrent use; a
// nil *CORS does nothing.
//
// The gateway is the single authority on Access-Control-Allow-Origin: Apply
// overwrites whatever value a function set, and removes it when the origin
// is not allowed, so a function cannot widen the configured list.
type CORS struct {
	anyOrigin     bool
	origins       map[string]struct{}
	allowMethods  []byte
	allowHeaders  []byte // nil: echo Access-Control-Request-Headers
	exposeHeaders []byte
	maxAge        []byte
}

// Canonical header names (fasthttp's normalized form) and fixed values.
var (
	hdrOrigin        = []byte("Origin")
	hdrRequestMethod = []byte("Access-Control-Request-Method")
	hdrRequestHdrs   = []byte("Access-Control-Request-Headers")
	hdrAllowOrigin   = []byte("Access-Control-Allow-Origin")
	hdrAllowMethods  = []byte("Access-Control-Allow-Methods")
	hdrAllowHeaders  = []byte("Access-Control-Allow-Headers")
	hdrExposeHeaders = []byte("Access-Control-Expose-Headers")
	hdrMaxAge        = []byte("Access-Control-Max-Age")
	hdrVary          = []byte("Vary")
	hdrErrorCode     = []byte(ErrorHeader)
	valAnyOrigin     = []byte(AnyOrigin)
	valOrigin        = []byte("Origin")
	valRequestHdrs   = []byte("Access-Control-Request-Headers")
	valJSON          = []byte("application/json")
	valCORSCode      = []byte(CodeCORSOriginNotAllowed)
	corsRefusedBody  = []byte(`{"code":"` + CodeCORSOriginNotAllowed + `","message":"origin not allowed"}`)
)

// NewCORS builds a CORS from o, or returns nil when o.Origins is empty.
func NewCORS(o CORSOptions) *CORS {
	if len(o.Origins) == 0 {
		return nil
	}
	c := &CORS{
		origins:       make(map[string]struct{}, len(o.Origins)),
		allowMethods:  []byte(orDefault(o.AllowMethods, DefaultCORSAllowMethods)),
		exposeHeaders: []byte(o.ExposeHeaders),
	}
	for _, origin := range o.Origins {
		origin = strings.TrimSpace(origin)
		if origin == AnyOrigin {
			c.anyOrigin = true
		}
		c.origins[origin] = struct{}{}
	}
	if o.AllowHeaders != "" {
		c.allowHeaders = []byte(o.AllowHeaders)
	}
	maxAge := o.MaxAge
	if maxAge == 0 {
		maxAge = DefaultCORSMaxAge
	}
	if maxAge > 0 {
		c.maxAge = strconv.AppendInt(nil, int64(maxAge/time.Second), decimalBase)
	}
	return c
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Preflight answers a CORS preflight request (OPTIONS with Origin and
// Access-Control-Request-Method) completely and returns true: 204 with the
// allow headers when the origin is allowed, otherwise 403 with a JSON error
// and ErrorHeader. Access-Control-Allow-Headers is the configured list, or
// else the request's Access-Control-Request-Headers when it is a plain list
// of header names (anything else is not echoed: the browser then refuses).
// Any other request is left alone and Preflight returns false.
func (c *CORS) Preflight(ctx *fasthttp.RequestCtx) bool {
	if c == nil || !ctx.IsOptions() {
		return false
	}
	req := &ctx.Request.Header
	origin := req.PeekBytes(hdrOrigin)
	if len(origin) == 0 || len(req.PeekBytes(hdrRequestMethod)) == 0 {
		return false
	}
	resp := &ctx.Response
	resp.Reset()
	if !c.allowed(origin) {
		resp.SetStatusCode(fasthttp.StatusForbidden)
		resp.Header.SetContentTypeBytes(valJSON)
		resp.Header.SetBytesKV(hdrErrorCode, valCORSCode)
		resp.SetBodyRaw(corsRefusedBody)
		return true
	}
	resp.SetStatusCode(fasthttp.StatusNoContent)
	c.setAllowOrigin(&resp.Header, origin)
	resp.Header.SetCanonical(hdrAllowMethods, c.allowMethods)
	if c.allowHeaders != nil {
		resp.Header.SetCanonical(hdrAllowHeaders, c.allowHeaders)
	} else if requested := req.PeekBytes(hdrRequestHdrs); len(requested) > 0 && headerNameList(requested) {
		resp.Header.SetCanonical(hdrAllowHeaders, requested)
		resp.Header.AddBytesKV(hdrVary, valRequestHdrs)
	}
	if c.maxAge != nil {
		resp.Header.SetCanonical(hdrMaxAge, c.maxAge)
	}
	return true
}

// Apply adds CORS headers to the response of an actual (non-preflight)
// request: Access-Control-Allow-Origin, "*" for AnyOrigin or else the
// request's origin when it is listed, and Access-Control-Expose-Headers.
// With a list of origins the response varies by Origin, so Vary: Origin is
// added to every response; a request whose origin is not listed gets no
// CORS headers at all.
func (c *CORS) Apply(ctx *fasthttp.RequestCtx) {
	if c == nil {
		return
	}
	resp := &ctx.Response.Header
	origin := ctx.Request.Header.PeekBytes(hdrOrigin)
	if !c.anyOrigin {
		addVaryOrigin(resp)
		if len(origin) == 0 || !c.allowed(origin) {
			resp.DelBytes(hdrAllowOrigin)
			return
		}
	}
	c.setAllowOrigin(resp, origin)
	if len(c.exposeHeaders) > 0 {
		resp.SetCanonical(hdrExposeHeaders, c.exposeHeaders)
	}
}

// headerNameList reports whether v is a comma-separated list of header
// names (RFC 9110 tokens) with optional blanks, so it can be echoed as is.
func headerNameList(v []byte) bool {
	for _, b := range v {
		if b != ',' && b != ' ' && b != '\t' && !isTokenChar(b) {
			return false
		}
	}
	return true
}

// isTokenChar reports whether b is an RFC 9110 tchar.
func isTokenChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// allowed reports whether origin may make CORS requests.
func (c *CORS) allowed(origin []byte) bool {
	if c.anyOrigin {
		return true
	}
	_, ok := c.origins[string(origin)]
	return ok
}

// setAllowOrigin sets Access-Control-Allow-Origin for an allowed origin.
func (c *CORS) setAllowOrigin(h *fasthttp.ResponseHeader, origin []byte) {
	if c.anyOrigin {
		h.SetCanonical(hdrAllowOrigin, valAnyOrigin)
		return
	}
	h.SetCanonical(hdrAllowOrigin, origin)
	addVaryOrigin(h)
}

// addVaryOrigin adds Origin to the response's Vary list unless it is there
// already (or Vary is "*").
func addVaryOrigin(h *fasthttp.ResponseHeader) {
	for _, v := range h.PeekAll(fasthttp.HeaderVary) {
		if varyCovers(v) {
			return
		}
	}
	h.AddBytesKV(hdrVary, valOrigin)
}

// varyCovers reports whether a Vary value lists Origin or "*".
func varyCovers(v []byte) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		token := trimSpace(v[:i])
		if string(token) == AnyOrigin || equalFoldASCII(token, valOrigin) {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}
