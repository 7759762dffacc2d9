package gateway

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/guard"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/ratestore"
	"edgeway.dev/edgeway/internal/routable"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/fasthttp/router"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// Gateway serves HTTP for a set of functions.
type Gateway struct {
	opts        config.Options
	sup         routable.Table // lifecycle's Supervisor
	log         zerolog.Logger
	srv         *fasthttp.Server
	adminSrv    *fasthttp.Server // only with --admin-listen
	admin       *router.Router
	stopping    atomic.Bool
	ids         *observe.RequestIDs
	sampleBelow uint64 // access-log a request when a random uint32 is below this
	// bodyReadTimeout bounds reading a body's first part (see headerReceived).
	bodyReadTimeout time.Duration

	auth     Authenticator // nil: no checks (--auth none)
	cors     *guard.CORS   // nil: no CORS headers
	trusted  []netip.Prefix
	sessions *upstream.Sessions // open WebSocket sessions
	conns    connSettings       // for every client connection
	hooks    Hooks              // the host program's, set before Serve (hooks.go)
	// rateStore shares rate limits between instances (--rate-limit-store);
	// nil: each function's local limiter.
	rateStore *ratestore.Store
}

// Security is what New needs beyond the options: the authenticator, CORS
// policy and trusted proxies, built (and validated) by main.
type Security struct {
	Auth    Authenticator // nil or NoAuth: no checks
	CORS    *guard.CORS
	Trusted []netip.Prefix
}

// fromTrustedProxy reports whether the peer is a trusted proxy.
func (g *Gateway) fromTrustedProxy(ctx *fasthttp.RequestCtx) bool {
	if len(g.trusted) == 0 {
		return false
	}
	remote := guard.RemoteAddr(ctx)
	for _, p := range g.trusted {
		if p.Contains(remote) {
			return true
		}
	}
	return false
}

// New builds the gateway; Serve starts it.
func New(opts config.Options, sup routable.Table, sec Security, log zerolog.Logger) *Gateway {
	g := &Gateway{opts: opts, sup: sup, log: log, ids: observe.NewRequestIDs(),
		auth: authenticator(sec.Auth), cors: sec.CORS, trusted: sec.Trusted,
		sessions: upstream.NewSessions(opts.MaxWebSockets)}
	upstream.SetLogger(log) // for panics recovered in streams and WebSocket sessions
	g.sampleBelow = uint64(opts.AccessLogSample * (1 << 32))
	g.bodyReadTimeout = opts.Timeout
	if opts.BodyReadTimeout > 0 && opts.BodyReadTimeout < opts.Timeout {
		g.bodyReadTimeout = opts.BodyReadTimeout
	}
	g.conns = connSettings{yield: opts.ClientReadYield, writeTimeout: opts.ClientWriteTimeout,
		writeResolution: int64(opts.ClientWriteTimeout / 8), lingeringTimeout: opts.LingeringTimeout,
		lingeringTime: opts.LingeringTime, readBuffer: opts.MaxHeaderBytes,
		maxChunkFraming: 4 * int64(opts.MaxHeaderBytes), log: log}
	g.rateStore = newRateStore(opts, log)
	g.admin = g.newAdminRouter()
	g.srv = &fasthttp.Server{
		Handler:                      g.serve,
		ExpectHandler:                g.expect,
		ErrorHandler:                 g.handleParseError,
		HeaderReceived:               g.headerReceived,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		StreamRequestBody:            true,
		CloseOnShutdown:              true,
		MaxRequestBodySize:           int(opts.MaxBody),
		ReadBufferSize:               opts.MaxHeaderBytes,
		ReadTimeout:                  opts.ReadHeaderTimeout,
		IdleTimeout:                  opts.IdleConnTimeout,
		Concurrency:                  opts.MaxClientConns,
		Logger:                       fasthttpLogger{log},
	}
	if opts.AdminListen != "" {
		g.adminSrv = g.newAdminServer()
	}
	return g
}

// ServeAdmin serves /health and /metrics on their own listener
// (--admin-listen).
func (g *Gateway) ServeAdmin(ln net.Listener) error { return g.adminSrv.Serve(ln) }

// Serve accepts connections on ln until Shutdown.
func (g *Gateway) Serve(ln net.Listener) error {
	ln = newAcceptRetryListener(ln, g.log)
	return g.srv.Serve(clientListener{Listener: ln, set: &g.conns})
}

// Shutdown marks the gateway not ready, keeps serving for
// --shutdown-delay (within ctx), then stops accepting, lets in-flight
// requests finish until ctx ends, and closes idle connections.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.stopping.Store(true)
	// --shutdown-delay: keep serving while load balancers polling
	// /health/ready (503 from now on) stop sending, then close.
	if d := g.opts.ShutdownDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	// Open WebSockets would outlive any grace: close them now with 1001
	// (going away) so clients reconnect elsewhere.
	g.sessions.GoAway(upstream.CloseGoingAway, g.opts.WebSocketCloseTimeout)
	if g.adminSrv != nil {
		defer g.adminSrv.ShutdownWithContext(ctx)
	}
	if g.rateStore != nil {
		defer g.rateStore.Close() // after the last request's check
	}
	return g.srv.ShutdownWithContext(ctx)
}

// headerReceived sets the read deadline for the body: fasthttp reads the
// first few KiB of a body before the handler runs, and a small body is
// read whole before it is pipelined, so that part must arrive within
// --body-read-timeout (408 otherwise); larger bodies then get the same
// idle gap between chunks while they stream. The server's ReadTimeout only
// bounds the header. A request without a body reads nothing more, so its
// deadline is left alone (one SetReadDeadline less per GET).
func (g *Gateway) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() == 0 {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{ReadTimeout: g.bodyReadTimeout}
}

// serve is the server's handler: a request on a poisoned connection is
// refused, then Handle, then an unread body is settled (settle.go) and the
// connection is armed to yield before reading the next request (see
// clientconn.go). A request without a body pays two branches for this.
func (g *Gateway) serve(ctx *fasthttp.RequestCtx) {
	defer g.recoverPanic(ctx)
	c := connOf(ctx)
	if c != nil {
		c.holdFull = false // armed only by this request's own response
	}
	if c != nil && c.flags.Load()&connPoisoned != 0 {
		// fasthttp parsed a request out of what may be the tail of a body
		// nobody read: it never reaches a function.
		poisonedRequests.Inc()
		errBadRequest.write(ctx)
		ctx.SetConnectionClose()
		return
	}
	watchChunked(ctx)
	g.Handle(ctx)
	if ctx.Request.Header.ContentLength() != 0 {
		g.settleBody(ctx)
		unwatchChunked(ctx)
	}
	holdFullBuffer(ctx)
	armYield(ctx)
}

// Handle is the fasthttp handler: fixed endpoints through the router,
// everything else through the zero-allocation function dispatch.
func (g *Gateway) Handle(ctx *fasthttp.RequestCtx) {
	// Framing first, before any routing (admin paths included), on the
	// header block as received (sanitizeRequest rewrites it).
	if g.refuseMalformed(ctx) {
		return
	}
	uri := ctx.Request.Header.RequestURI()
	if g.isAdminPath(pathOnly(uri)) {
		g.admin.Handler(ctx)
		return
	}
	ws := isWebSocketUpgrade(&ctx.Request.Header)
	sanitizeRequest(&ctx.Request.Header)
	if ws {
		restoreUpgrade(&ctx.Request.Header)
	}
	if g.cors.Preflight(ctx) {
		return
	}
	name, fnURI, needsSlash, ok := splitRoute(uri)
	if !ok {
		errNotFound.write(ctx)
		return
	}
	fn := g.sup.Lookup(name)
	if fn == nil {
		errNotFound.write(ctx)
		return
	}
	g.serveFunction(ctx, fn, fnURI, needsSlash, ws)
}

// handleParseError answers requests fasthttp could not read. The
// connection closes (fasthttp) and lingers, since the client may still be
// sending, unless it was too slow to send anything more.
func (g *Gateway) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	var netErr net.Error
	timedOut := errors.As(err, &netErr) && netErr.Timeout()
	if c := connOf(ctx); c != nil && !timedOut {
		c.lingerOnClose()
	}
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		errTooLarge.write(ctx)
	case timedOut:
		errReqTimeout.write(ctx)
	default:
		errBadRequest.write(ctx)
	}
}

// fasthttpLogger sends fasthttp's own messages to the debug log.
type fasthttpLogger struct{ log zerolog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug().Msgf(format, args...)
}
