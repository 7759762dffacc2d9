package gateway

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"edgeway/config"
	"edgeway/lifecycle"
	"edgeway/upstream"

	"github.com/fasthttp/router"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// Functions finds a routable function by name without allocating; the
// lifecycle.Supervisor implements it.
type Functions interface {
	Lookup(name []byte) *lifecycle.Function
}

// Gateway serves HTTP for a set of functions.
type Gateway struct {
	opts     config.Options
	sup      Functions
	log      zerolog.Logger
	srv      *fasthttp.Server
	admin    *router.Router
	stopping atomic.Bool
}

// New builds the gateway; Serve starts it.
func New(opts config.Options, sup Functions, log zerolog.Logger) *Gateway {
	g := &Gateway{opts: opts, sup: sup, log: log}
	g.admin = g.newAdminRouter()
	g.srv = &fasthttp.Server{
		Handler:                      g.Handle,
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
	return g
}

// Serve accepts connections on ln until Shutdown.
func (g *Gateway) Serve(ln net.Listener) error { return g.srv.Serve(ln) }

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// and closes idle connections.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.stopping.Store(true)
	return g.srv.ShutdownWithContext(ctx)
}

// headerReceived gives the body the request's whole wall-clock budget: the
// server's ReadTimeout only bounds the header.
func (g *Gateway) headerReceived(*fasthttp.RequestHeader) fasthttp.RequestConfig {
	return fasthttp.RequestConfig{ReadTimeout: g.opts.Timeout}
}

// Handle is the fasthttp handler: fixed endpoints through the router,
// everything else through the zero-allocation function dispatch.
func (g *Gateway) Handle(ctx *fasthttp.RequestCtx) {
	uri := ctx.Request.Header.RequestURI()
	if isAdminPath(pathOnly(uri)) {
		g.admin.Handler(ctx)
		return
	}
	sanitizeRequest(&ctx.Request.Header)
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
	g.serveFunction(ctx, fn, fnURI, needsSlash)
}

func (g *Gateway) serveFunction(ctx *fasthttp.RequestCtx, fn *lifecycle.Function, fnURI []byte, needsSlash bool) {
	if cl := ctx.Request.Header.ContentLength(); cl > 0 && int64(cl) > g.opts.MaxBody {
		errTooLarge.write(ctx)
		ctx.SetConnectionClose() // the unread body makes the connection unusable
		return
	}
	if needsSlash {
		var buf [512]byte
		rewritten := append(append(buf[:0], '/'), fnURI...)
		ctx.Request.SetRequestURIBytes(rewritten)
	} else {
		ctx.Request.SetRequestURIBytes(fnURI)
	}
	setForwarded(ctx)
	deadline := time.Now().Add(fn.Config.Timeout)
	w, err := fn.Pool.Acquire(deadline)
	if err == nil {
		err = w.Proxy(ctx, deadline)
		if err == upstream.ErrDial {
			// Nothing reached the worker: one retry on another (or on its
			// replacement) is safe.
			if w, err = fn.Pool.AcquireOther(deadline, w); err == nil {
				err = w.Proxy(ctx, deadline)
			}
		}
	}
	if err != nil {
		g.writeDispatchError(ctx, fn, err)
		return
	}
	sanitizeResponse(&ctx.Response.Header)
}

func (g *Gateway) writeDispatchError(ctx *fasthttp.RequestCtx, fn *lifecycle.Function, err error) {
	switch {
	case errors.Is(err, upstream.ErrTimeout):
		errTimeout.write(ctx)
	case errors.Is(err, upstream.ErrBoot):
		errBoot.write(ctx)
	case errors.Is(err, upstream.ErrCrashLoop):
		errCrashLoop.writeRetryAfter(ctx, time.Until(fn.Pool.Load().CrashLoopUntil))
	case errors.Is(err, upstream.ErrOverloaded):
		errOverloaded.writeRetryAfter(ctx, fn.Config.QueueTimeout)
	case errors.Is(err, upstream.ErrMemoryLimit):
		errWorkerLimit.write(ctx)
	case errors.Is(err, upstream.ErrClosed):
		errShuttingDown.write(ctx)
	default:
		errWorker.write(ctx)
	}
	g.log.Warn().Str("function", fn.Name).Err(err).Msg("request failed")
}

// handleParseError answers requests fasthttp could not read.
func (g *Gateway) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		errTooLarge.write(ctx)
	case errors.As(err, &netErr) && netErr.Timeout():
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
