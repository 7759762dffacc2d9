package gateway

import (
	"crypto/subtle"
	"encoding/json"
	"runtime/pprof"
	"strings"
	"time"

	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/routable"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// Fixed endpoints. They are served by the router and never routed to
// functions, so a function called "health" is reachable only under
// /functions/v1/health. With --admin-listen, /health and /metrics move to
// that listener and the main one keeps only GET /. Profiles (/debug/pprof/)
// are served only with --pprof, only on the admin listener.
const (
	pathRoot    = "/"
	pathHealth  = "/health"
	pathReady   = "/health/ready"
	pathMetrics = "/metrics"
	pathPprof   = "/debug/pprof/"
)

func (g *Gateway) isAdminPath(path []byte) bool {
	injectFault(path)
	switch string(path) {
	case pathRoot:
		return true
	case pathHealth, pathReady, pathMetrics:
		return g.adminSrv == nil
	}
	return false
}

var (
	statusOK        = []byte(`{"status":"ok"}`)
	statusReady     = []byte(`{"status":"ready"}`)
	statusStopping  = []byte(`{"status":"shutting down"}`)
	statusLoading   = []byte(`{"status":"loading"}`)
	errForbidden    = newError(fasthttp.StatusForbidden, "FORBIDDEN", "this endpoint needs the internal key")
	bearerPrefix    = []byte("Bearer ")
	hdrCacheControl = []byte("Cache-Control")
	valNoStore      = []byte("no-store")
)

func (g *Gateway) newAdminRouter() *router.Router {
	r := router.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleOPTIONS = false
	r.PanicHandler = g.recoverAdminPanic
	r.GET(pathRoot, func(ctx *fasthttp.RequestCtx) { writeJSON(ctx, fasthttp.StatusOK, statusOK) })
	r.GET(pathReady, g.handleReady)
	r.GET(pathHealth, g.handleHealth)
	r.GET(pathMetrics, g.handleMetrics)
	if g.opts.Pprof && g.opts.AdminListen != "" {
		r.GET(pathPprof+"{profile:*}", g.handlePprof)
	}
	g.registerDeploy(r)
	r.NotFound = func(ctx *fasthttp.RequestCtx) { errNotFound.write(ctx) }
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		newError(fasthttp.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method not allowed").write(ctx)
	}
	return r
}

// newAdminServer is the --admin-listen server. It has the main
// listener's protections under their own flags: the header must arrive
// within --admin-read-header-timeout, an idle keep-alive connection is
// closed after --admin-idle-conn-timeout and at most --admin-max-conns
// connections are served at once. Request bodies are streamed (only a
// deploy upload has one); the part fasthttp reads before the handler, and
// then the rest, get --deploy-read-timeout (adminHeaderReceived and the
// deploy handler).
func (g *Gateway) newAdminServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               g.admin.Handler,
		HeaderReceived:        g.adminHeaderReceived,
		Logger:                fasthttpLogger{g.log},
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		StreamRequestBody:     true,
		ReadTimeout:           g.opts.AdminReadHeaderTimeout,
		IdleTimeout:           g.opts.AdminIdleConnTimeout,
		Concurrency:           g.opts.AdminMaxConns,
	}
}

// adminHeaderReceived gives a deploy upload, which may take up to
// --deploy-read-timeout to arrive, that much time; any other request's
// body stays under the header timeout (nothing else reads one).
func (g *Gateway) adminHeaderReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() == 0 || g.opts.DeployKey == "" || g.opts.DeployReadTimeout <= 0 ||
		string(pathOnly(h.RequestURI())) != pathDeploy {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{ReadTimeout: g.opts.DeployReadTimeout}
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.Header.SetBytesKV(hdrCacheControl, valNoStore)
	ctx.SetBody(body)
}

// authorized reports whether the request carries the internal key
// (compared in constant time). Without a configured key nobody is.
func (g *Gateway) authorized(ctx *fasthttp.RequestCtx) bool {
	if g.opts.InternalKey == "" {
		return false
	}
	auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(auth) <= len(bearerPrefix) || !equalFold(auth[:len(bearerPrefix)], "bearer ") {
		return false
	}
	return subtle.ConstantTimeCompare(auth[len(bearerPrefix):], []byte(g.opts.InternalKey)) == 1
}

// handleReady answers load balancers: 503 once shutdown has begun, and
// while the function set is not loaded yet (a table that says so).
func (g *Gateway) handleReady(ctx *fasthttp.RequestCtx) {
	if g.stopping.Load() {
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, statusStopping)
		return
	}
	if r, ok := g.sup.(interface{ Ready() bool }); ok && !r.Ready() {
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, statusLoading)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, statusReady)
}

// healthDoc is the detailed /health document.
type healthDoc struct {
	Status    string                    `json:"status"`
	Functions map[string]functionHealth `json:"functions"`
	// RateLimitStore is the shared store (--rate-limit-store), if any.
	RateLimitStore *rateStoreHealth `json:"rateLimitStore,omitempty"`
	// Prewarm is the prewarm pool (size per class, classes, idle, hits,
	// misses, mean refill time); absent when it is off.
	Prewarm any `json:"prewarm,omitempty"`
}

type functionHealth struct {
	routable.FunctionStatus
	Breaker          string  `json:"breaker"`
	Latency          latency `json:"latencyMs"`
	LatencyMs        float64 `json:"avgLatencyMs"`
	PipelinedTotal   uint64  `json:"pipelinedRequests"`
	ExclusiveTotal   uint64  `json:"exclusiveRequests"`
	QueuedOrStarting int     `json:"waiting"`
}

// latency is the percentiles over the function's last requests (a fixed
// ring, see guard.LatencyRing).
type latency struct {
	P50     float64 `json:"p50"`
	P95     float64 `json:"p95"`
	P99     float64 `json:"p99"`
	Samples int     `json:"samples"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// handleHealth answers {"status":"ok"} to anyone and the per-function
// document to holders of the internal key.
func (g *Gateway) handleHealth(ctx *fasthttp.RequestCtx) {
	status := "ok"
	if g.stopping.Load() {
		status = "shutting down"
	}
	if !g.authorized(ctx) {
		if status == "ok" {
			writeJSON(ctx, fasthttp.StatusOK, statusOK)
		} else {
			writeJSON(ctx, fasthttp.StatusOK, statusStopping)
		}
		return
	}
	doc := healthDoc{Status: status, Functions: map[string]functionHealth{}, RateLimitStore: g.rateStoreHealth()}
	if lister, ok := g.sup.(interface{ Functions() []*routable.Function }); ok {
		for _, fn := range lister.Functions() {
			piped, excl := fn.Pool.Exchanges()
			p50, p95, p99, n := fn.Latency.Percentiles()
			doc.Functions[fn.Name] = functionHealth{
				FunctionStatus:   fn.Status(),
				Breaker:          fn.Breaker.State(),
				Latency:          latency{P50: ms(p50), P95: ms(p95), P99: ms(p99), Samples: n},
				LatencyMs:        float64(fn.Pool.Latency().Microseconds()) / 1000,
				PipelinedTotal:   piped,
				ExclusiveTotal:   excl,
				QueuedOrStarting: fn.Pool.Waiting(),
			}
		}
	}
	if pw, ok := g.sup.(interface{ PrewarmHealth() any }); ok {
		doc.Prewarm = pw.PrewarmHealth()
	}
	body, _ := json.Marshal(doc)
	writeJSON(ctx, fasthttp.StatusOK, body)
}

// handlePprof serves Go's profiles (CPU, heap, goroutines...) to holders
// of the internal key, with --pprof on the admin listener only:
// `go tool pprof -http=: 'http://admin-host/debug/pprof/profile?seconds=10'`
// with the key in an Authorization header. Only the named profiles are
// served: cmdline (the gateway's argv, --jwt-secret
// included) and anything else answer 404.
func (g *Gateway) handlePprof(ctx *fasthttp.RequestCtx) {
	if !g.authorized(ctx) {
		errForbidden.write(ctx)
		return
	}
	// pprofhandler dispatches on ctx.Path() (decoded and normalised), so the
	// allowlist checks the same bytes: /debug/pprof/%63mdline is cmdline.
	if !pprofAllowed(string(ctx.Path())) {
		errNotFound.write(ctx)
		return
	}
	pprofhandler.PprofHandler(ctx)
}

// pprofAllowed reports whether path names a profile that reveals nothing but the gateway's own runtime state.
func pprofAllowed(path string) bool {
	name, ok := strings.CutPrefix(path, pathPprof)
	if !ok {
		return false
	}
	switch name {
	case "profile", "symbol", "trace":
		return true
	}
	return pprof.Lookup(name) != nil
}

// handleMetrics writes Prometheus text for holders of the internal key.
func (g *Gateway) handleMetrics(ctx *fasthttp.RequestCtx) {
	if !g.authorized(ctx) {
		errForbidden.write(ctx)
		return
	}
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	observe.WritePrometheus(ctx)
}
