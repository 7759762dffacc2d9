package gateway

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"time"

	"edgeway.dev/edgeway/internal/guard"
	"edgeway.dev/edgeway/internal/routable"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

var hdrRequestID = []byte("X-Request-Id")

// maxRequestIDLength bounds a client-sent x-request-id; a longer one is
// replaced by a generated id rather than copied into logs.
const maxRequestIDLength = 128

// serveFunction proxies one request to fn: path rewrite, forwarding
// headers, request id, worker pick, proxy (with one retry when nothing
// reached the worker), metrics and the access log.
func (g *Gateway) serveFunction(ctx *fasthttp.RequestCtx, fn *routable.Function, fnURI []byte, needsSlash, ws bool) {
	start := time.Now()
	var ridBuf [maxRequestIDLength + 32]byte
	rid := append(ridBuf[:0], ctx.Request.Header.PeekBytes(hdrRequestID)...)
	if len(rid) == 0 || len(rid) > maxRequestIDLength {
		rid = g.ids.Append(ridBuf[:0])
		ctx.Request.Header.SetBytesKV(hdrRequestID, rid)
	}
	reqBytes := ctx.Request.Header.ContentLength()
	logged := g.sampleBelow > 0 && uint64(rand.Uint32()) < g.sampleBelow
	var pathBuf [maxLoggedPath]byte
	var path []byte
	if logged { // the client's path, before the rewrite; never the query
		p := pathOnly(ctx.Request.Header.RequestURI())
		path = append(pathBuf[:0], p[:min(len(p), maxLoggedPath)]...)
	}
	client := g.clientIP(ctx)
	pid := 0
	var w *upstream.Worker
	var end time.Time // one clock read for the breaker, latency and metrics
	if g.admit(ctx, fn, client, start) {
		pid, w = g.proxy(ctx, fn, fnURI, needsSlash, ws, client, start)
		injectAfterProxyFault(ctx)
		end = time.Now()
		wasOpen := fn.Breaker.State() == guard.StateOpen
		fn.Breaker.Report(breakerFailure(ctx), end)
		if !wasOpen && fn.Breaker.State() == guard.StateOpen {
			fn.Metrics.BreakerOpenings.Inc()
			g.log.Warn().Str("function", fn.Name).Msg("circuit breaker opened")
		}
	}
	ctx.Response.Header.SetBytesKV(hdrRequestID, rid)
	g.cors.Apply(ctx)
	status := ctx.Response.StatusCode()
	if end.IsZero() {
		end = time.Now()
	}
	elapsed := end.Sub(start)
	fn.Latency.Record(elapsed)
	respBytes := ctx.Response.Header.ContentLength()
	fn.Metrics.ObserveRequest(status, elapsed, reqBytes, respBytes)
	if g.hooks.RequestStats != nil {
		if !ctx.Response.IsBodyStream() {
			respBytes = len(ctx.Response.Body()) // the gateway's own answers declare none yet
		}
		g.requestStats(fn.Name, status, elapsed, max(reqBytes, -1), max(respBytes, -1))
	}
	// The first request a cold-started worker answers carries its boot
	// (taken whether or not this request is logged).
	var cold upstream.ColdStart
	if w != nil {
		cold = w.TakeColdStart()
	}
	if logged {
		g.accessLog(ctx, fn, rid, path, status, start, pid, client, cold)
	}
}

// maxRetiredRetries bounds how many retired versions (reloads in a row) a
// request follows to the current one.
const maxRetiredRetries = 3

// maxLoggedPath bounds the path copied into an access-log line.
const maxLoggedPath = 512

// proxy runs the request through the worker pool and returns the pid of
// the worker that answered (0 if none did).
func (g *Gateway) proxy(ctx *fasthttp.RequestCtx, fn *routable.Function, fnURI []byte, needsSlash, ws bool, client netip.Addr, start time.Time) (int, *upstream.Worker) {
	if needsSlash {
		var buf [512]byte
		ctx.Request.SetRequestURIBytes(append(append(buf[:0], '/'), fnURI...))
	} else {
		ctx.Request.SetRequestURIBytes(fnURI)
	}
	setForwarded(ctx, client, g.fromTrustedProxy(ctx))
	deadline := start.Add(fn.Config.Timeout)
	if ws {
		return g.proxyWebSocket(ctx, fn, deadline), nil
	}
	lim := upstream.BodyLimits{Max: fn.Config.MaxBodyBytes, IdleGap: g.opts.BodyReadTimeout, Whole: g.opts.UpstreamBodyBuffer}
	w, err := fn.Pool.Acquire(deadline)
	for retries := 0; errors.Is(err, upstream.ErrClosed) && retries < maxRetiredRetries; retries++ {
		// A reload retired this version (a request that looked it up just
		// before the switch, or waited on its cold start): the current
		// version serves it. At shutdown Lookup finds the same one.
		cur := g.sup.Lookup([]byte(fn.Name))
		if cur == nil || cur == fn {
			break
		}
		fn = cur
		w, err = fn.Pool.Acquire(deadline)
	}
	if err == nil {
		err = w.Proxy(ctx, deadline, lim)
		if err == upstream.ErrDial {
			// Nothing reached the worker: one retry on another (or on its
			// replacement) is safe.
			if w, err = fn.Pool.AcquireOther(deadline, w); err == nil {
				err = w.Proxy(ctx, deadline, lim)
			}
		}
	}
	if err != nil {
		g.writeDispatchError(ctx, fn, err)
		return 0, nil
	}
	sanitizeResponse(&ctx.Response.Header)
	return w.PID, w
}

// accessLog writes one line per request: no query string (it may carry
// tokens), no headers.
func (g *Gateway) accessLog(ctx *fasthttp.RequestCtx, fn *routable.Function, rid, path []byte, status int, start time.Time, pid int, client netip.Addr, cold upstream.ColdStart) {
	var ipBuf [64]byte
	e := g.log.Info().
		Bytes("request_id", rid).
		Str("function", fn.Name).
		Bytes("method", ctx.Method()).
		Bytes("path", path).
		Int("status", status).
		Dur("duration_ms", time.Since(start))
	// The response's Content-Length; a streamed (chunked) body has none to
	// log, rather than fasthttp's negative sentinels.
	if n := ctx.Response.Header.ContentLength(); n >= 0 {
		e = e.Int("bytes", n)
	} else {
		e = e.Bool("streamed", true)
	}
	if cold.Source != "" {
		e = e.Dur("cold_start_ms", cold.Duration).Str("cold_start", cold.Source)
	}
	e.Bytes("client_ip", client.AppendTo(ipBuf[:0])).
		Int("worker_pid", pid).
		Msg("request")
}

// budgetRefusals counts requests refused 503 OVERLOADED because the
// gateway's worker budget was spent with every worker busy.
var budgetRefusals = metrics.GetOrCreateCounter(`edgeway_worker_budget_refusals_total`)

// CodeWorkerReset: the shared worker connection the request was written on
// was broken by another request, and the request is not idempotent.
const CodeWorkerReset = "WORKER_RESET"

var errWorkerReset = newError(fasthttp.StatusBadGateway, CodeWorkerReset, "the connection to the function worker was reset by another request; retry")

// writeDispatchError answers a request the pool or the worker failed.
func (g *Gateway) writeDispatchError(ctx *fasthttp.RequestCtx, fn *routable.Function, err error) {
	e, retry, hasRetry, closeConn := errWorker, time.Duration(0), false, false
	switch {
	case errors.Is(err, upstream.ErrTimeout):
		e = errTimeout
	case errors.Is(err, upstream.ErrBoot):
		e = errBoot
		if at := fn.Pool.Load().BootRetryAt; !at.IsZero() {
			retry, hasRetry = time.Until(at), true // when the next boot may start
		}
	case errors.Is(err, upstream.ErrCrashLoop):
		e, retry, hasRetry = errCrashLoop, time.Until(fn.Pool.Load().CrashLoopUntil), true
	case errors.Is(err, upstream.ErrOverloaded):
		e, retry, hasRetry = errOverloaded, fn.Config.QueueTimeout, true
		if err == upstream.ErrNoWorkerSlot {
			budgetRefusals.Inc()
		}
	case errors.Is(err, upstream.ErrMemoryLimit):
		e = errWorkerLimit
	case errors.Is(err, upstream.ErrCollateral):
		e = errWorkerReset // not in breakerFailure: another request's failure
	case errors.Is(err, upstream.ErrClosed):
		e = errShuttingDown
	case errors.Is(err, upstream.ErrClientBody):
		e, closeConn = errBadRequest, true // the rest of the body cannot be framed
	case errors.Is(err, upstream.ErrBodyTooLarge):
		e, closeConn = errTooLarge, true
	case errors.Is(err, upstream.ErrBodyStalled):
		e, closeConn = errReqTimeout, true
	}
	switch {
	case closeConn: // after the write, which resets the response
		refuseAndClose(ctx, e)
	case hasRetry:
		e.writeRetryAfter(ctx, retry)
	default:
		e.write(ctx)
	}
	fn.Metrics.Refuse(string(e.code))
	g.log.Warn().Bytes("request_id", ctx.Request.Header.PeekBytes(hdrRequestID)).Str("function", fn.Name).Err(err).Msg("request failed")
}
