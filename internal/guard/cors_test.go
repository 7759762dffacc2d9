package guard

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	appOrigin   = "https://app.example.com"
	otherOrigin = "https://evil.example.net"
)

// newCtx builds a request with method and headers given as "Key: value".
func newCtx(method string, headers ...string) *fasthttp.RequestCtx {
	ctx := new(fasthttp.RequestCtx)
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI("/fn")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		ctx.Request.Header.Add(k, v)
	}
	return ctx
}

// respHeader returns the values of the response header key as they would
// go on the wire, joined with " | ", or "" when absent.
func respHeader(ctx *fasthttp.RequestCtx, key string) string {
	var vals []string
	for line := range strings.SplitSeq(ctx.Response.Header.String(), "\r\n") {
		k, v, ok := strings.Cut(line, ": ")
		if ok && strings.EqualFold(k, key) {
			vals = append(vals, v)
		}
	}
	return strings.Join(vals, " | ")
}

func TestNewCORSEmptyIsNil(t *testing.T) {
	t.Parallel()
	if c := NewCORS(CORSOptions{}); c != nil {
		t.Fatal("NewCORS without origins is not nil")
	}
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	list := NewCORS(CORSOptions{Origins: []string{appOrigin, " https://b.example.com "}})
	anyOrigin := NewCORS(CORSOptions{Origins: []string{AnyOrigin}})
	custom := NewCORS(CORSOptions{
		Origins:      []string{appOrigin},
		AllowMethods: "POST",
		AllowHeaders: "x-custom",
		MaxAge:       10*time.Minute + 500*time.Millisecond,
	})
	noMaxAge := NewCORS(CORSOptions{Origins: []string{appOrigin}, MaxAge: -1})
	preflight := func(origin string) *fasthttp.RequestCtx {
		return newCtx("OPTIONS", "Origin: "+origin, "Access-Control-Request-Method: POST")
	}
	asking := func(origin, headers string) *fasthttp.RequestCtx {
		return newCtx("OPTIONS", "Origin: "+origin, "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: "+headers)
	}
	const supabaseJS = "authorization,x-client-info,apikey,content-type,x-retry-count,traceparent,tracestate,baggage"
	type want struct {
		handled bool
		status  int
		headers map[string]string // "" means absent
		body    string
	}
	allowed := func(origin, vary, methods, headers, maxAge string) want {
		return want{handled: true, status: fasthttp.StatusNoContent, headers: map[string]string{
			"Access-Control-Allow-Origin":  origin,
			"Vary":                         vary,
			"Access-Control-Allow-Methods": methods,
			"Access-Control-Allow-Headers": headers,
			"Access-Control-Max-Age":       maxAge,
			"Content-Type":                 "",
			ErrorHeader:                    "",
		}}
	}
	refused := want{handled: true, status: fasthttp.StatusForbidden, headers: map[string]string{
		"Access-Control-Allow-Origin": "",
		"Content-Type":                "application/json",
		ErrorHeader:                   CodeCORSOriginNotAllowed,
	}, body: `{"code":"CORS_ORIGIN_NOT_ALLOWED","message":"origin not allowed"}`}
	passed := want{handled: false}
	tests := []struct {
		name string
		c    *CORS
		ctx  *fasthttp.RequestCtx
		want want
	}{
		{"listed origin", list, preflight(appOrigin),
			allowed(appOrigin, "Origin", DefaultCORSAllowMethods, "", "86400")},
		{"second listed origin, trimmed", list, preflight("https://b.example.com"),
			allowed("https://b.example.com", "Origin", DefaultCORSAllowMethods, "", "86400")},
		{"unlisted origin", list, preflight(otherOrigin), refused},
		{"origin differing in case", list, preflight(strings.ToUpper(appOrigin)), refused},
		{"null origin", list, preflight("null"), refused},
		{"any origin", anyOrigin, preflight(otherOrigin),
			allowed("*", "", DefaultCORSAllowMethods, "", "86400")},
		{"custom options", custom, preflight(appOrigin),
			allowed(appOrigin, "Origin", "POST", "x-custom", "600")},
		{"negative MaxAge sends none", noMaxAge, preflight(appOrigin),
			allowed(appOrigin, "Origin", DefaultCORSAllowMethods, "", "")},
		{"requested headers are echoed", list, asking(appOrigin, supabaseJS),
			allowed(appOrigin, "Origin | Access-Control-Request-Headers", DefaultCORSAllowMethods, supabaseJS, "86400")},
		{"requested headers, any origin", anyOrigin, asking(otherOrigin, "x-my-header, traceparent"),
			allowed("*", "Access-Control-Request-Headers", DefaultCORSAllowMethods, "x-my-header, traceparent", "86400")},
		{"configured headers are not widened", custom, asking(appOrigin, "traceparent"),
			allowed(appOrigin, "Origin", "POST", "x-custom", "600")},
		{"a value that is not a list of names is not echoed", list, asking(appOrigin, "x-a;x-b"),
			allowed(appOrigin, "Origin", DefaultCORSAllowMethods, "", "86400")},
		{"unlisted origin asking headers", list, asking(otherOrigin, "traceparent"), refused},
		{"OPTIONS without request method", list, newCtx("OPTIONS", "Origin: "+appOrigin), passed},
		{"OPTIONS without origin", list, newCtx("OPTIONS", "Access-Control-Request-Method: POST"), passed},
		{"not OPTIONS", list, newCtx("POST", "Origin: "+appOrigin, "Access-Control-Request-Method: POST"), passed},
		{"nil CORS", nil, preflight(appOrigin), passed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.c.Preflight(tt.ctx); got != tt.want.handled {
				t.Fatalf("Preflight = %v, want %v", got, tt.want.handled)
			}
			if !tt.want.handled {
				if got := respHeader(tt.ctx, "Access-Control-Allow-Origin"); got != "" || tt.ctx.Response.StatusCode() != fasthttp.StatusOK {
					t.Fatalf("response touched: status %d, ACAO %q", tt.ctx.Response.StatusCode(), got)
				}
				return
			}
			if got := tt.ctx.Response.StatusCode(); got != tt.want.status {
				t.Errorf("status = %d, want %d", got, tt.want.status)
			}
			for k, v := range tt.want.headers {
				if got := respHeader(tt.ctx, k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := string(tt.ctx.Response.Body()); got != tt.want.body {
				t.Errorf("body = %s, want %s", got, tt.want.body)
			}
		})
	}
}

func TestCORSApply(t *testing.T) {
	t.Parallel()
	list := NewCORS(CORSOptions{Origins: []string{appOrigin}, ExposeHeaders: "x-request-id"})
	anyOrigin := NewCORS(CORSOptions{Origins: []string{"https://ignored.example", AnyOrigin}, ExposeHeaders: "x-request-id"})
	plain := NewCORS(CORSOptions{Origins: []string{appOrigin}})
	tests := []struct {
		name     string
		c        *CORS
		origin   string   // request Origin; "" sends none
		function []string // headers the function set, "Key: value"
		want     map[string]string
	}{
		{"listed origin", list, appOrigin, nil, map[string]string{
			"Access-Control-Allow-Origin": appOrigin, "Vary": "Origin", "Access-Control-Expose-Headers": "x-request-id"}},
		{"unlisted origin gets no CORS headers", list, otherOrigin, nil, map[string]string{
			"Access-Control-Allow-Origin": "", "Vary": "Origin", "Access-Control-Expose-Headers": ""}},
		{"no origin: only Vary, for caches", list, "", nil, map[string]string{
			"Access-Control-Allow-Origin": "", "Vary": "Origin"}},
		{"the function cannot widen the list", list, otherOrigin, []string{"Access-Control-Allow-Origin: *"}, map[string]string{
			"Access-Control-Allow-Origin": ""}},
		{"the gateway's value replaces the function's", list, appOrigin, []string{"Access-Control-Allow-Origin: *"}, map[string]string{
			"Access-Control-Allow-Origin": appOrigin}},
		{"Vary is extended, not replaced", list, appOrigin, []string{"Vary: Accept-Encoding"}, map[string]string{
			"Vary": "Accept-Encoding | Origin"}},
		{"Vary already listing origin", list, appOrigin, []string{"Vary: accept-encoding, origin"}, map[string]string{
			"Vary": "accept-encoding, origin"}},
		{"Vary star", list, appOrigin, []string{"Vary: *"}, map[string]string{"Vary": "*"}},
		{"any origin", anyOrigin, otherOrigin, nil, map[string]string{
			"Access-Control-Allow-Origin": "*", "Vary": "", "Access-Control-Expose-Headers": "x-request-id"}},
		{"any origin, no Origin header", anyOrigin, "", []string{"Access-Control-Allow-Origin: https://x.example"}, map[string]string{
			"Access-Control-Allow-Origin": "*", "Vary": ""}},
		{"no expose headers keeps the function's", plain, appOrigin, []string{"Access-Control-Expose-Headers: x-fn"}, map[string]string{
			"Access-Control-Expose-Headers": "x-fn"}},
		{"nil CORS", nil, appOrigin, []string{"Access-Control-Allow-Origin: *"}, map[string]string{
			"Access-Control-Allow-Origin": "*", "Vary": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ctx *fasthttp.RequestCtx
			if tt.origin != "" {
				ctx = newCtx("POST", "Origin: "+tt.origin)
			} else {
				ctx = newCtx("POST")
			}
			for _, h := range tt.function {
				k, v, _ := strings.Cut(h, ": ")
				ctx.Response.Header.Add(k, v)
			}
			tt.c.Apply(ctx)
			tt.c.Apply(ctx) // idempotent
			for k, v := range tt.want {
				if got := respHeader(ctx, k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}
