package gateway

import (
	"fmt"
	"time"

	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/routable"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// proxyWebSocket hands an upgrade to a worker below its WebSocket cap.
// The gateway-wide cap (--max-websockets) and a pool with every worker at
// its cap refuse with 503 OVERLOADED before the handshake. It returns the
// pid of the worker that answered (0 if none did).
func (g *Gateway) proxyWebSocket(ctx *fasthttp.RequestCtx, fn *routable.Function, deadline time.Time) int {
	opts := upstream.SessionOptions{
		IdleTimeout:  fn.Config.WebSocketIdleTimeout,
		CloseTimeout: g.opts.WebSocketCloseTimeout,
		Observer: &sessionLog{
			log:       g.log,
			function:  fn.Name,
			metrics:   fn.Metrics,
			requestID: string(ctx.Request.Header.PeekBytes(hdrRequestID)),
			g:         g,
		},
	}
	reqID := opts.Observer.(*sessionLog).requestID
	var failed *upstream.Worker
	for {
		if !g.sessions.Reserve() {
			g.writeDispatchError(ctx, fn, upstream.ErrOverloaded)
			g.webSocketError(fn.Name, reqID, upstream.ErrOverloaded)
			return 0
		}
		var w *upstream.Worker
		var err error
		if failed == nil {
			w, err = fn.Pool.AcquireWebSocket(deadline)
		} else {
			w, err = fn.Pool.AcquireOtherWebSocket(deadline, failed)
		}
		if err != nil {
			g.sessions.Unreserve()
			g.writeDispatchError(ctx, fn, err)
			g.webSocketError(fn.Name, reqID, err)
			return 0
		}
		err = w.Upgrade(ctx, deadline, g.sessions, opts)
		if err == upstream.ErrDial && failed == nil {
			failed = w // nothing reached the worker: one retry is safe
			continue
		}
		if err != nil {
			g.writeDispatchError(ctx, fn, err)
			g.webSocketError(fn.Name, reqID, err)
			return 0
		}
		if st := ctx.Response.StatusCode(); st != fasthttp.StatusSwitchingProtocols {
			sanitizeResponse(&ctx.Response.Header)
			if g.hooks.WebSocketError != nil {
				g.webSocketError(fn.Name, reqID, fmt.Errorf("the function answered the upgrade with status %d", st))
			}
		}
		return w.PID
	}
}

// sessionLog feeds a WebSocket session's metrics and writes one log line
// when it closes.
type sessionLog struct {
	log       zerolog.Logger
	function  string
	metrics   *observe.FunctionMetrics
	requestID string
	g         *Gateway // for its hooks
}

func (l *sessionLog) Opened() {
	l.metrics.WebSocketOpened()
	if h := l.g.hooks.WebSocketOpen; h != nil {
		defer l.g.recoverHook()
		h(l.function, l.requestID)
	}
}

func (l *sessionLog) Transferred(in, out int) {
	if in > 0 {
		l.metrics.WebSocketBytesIn.Add(in)
	}
	if out > 0 {
		l.metrics.WebSocketBytesOut.Add(out)
	}
}

func (l *sessionLog) Closed(e upstream.SessionEnd) {
	l.metrics.WebSocketClosed(e.Code, e.Duration)
	by := e.By
	if by == "" {
		by = "none"
	}
	l.log.Info().
		Str("request_id", l.requestID).
		Str("function", l.function).
		Int("code", e.Code).
		Str("closed_by", by).
		Dur("duration_ms", e.Duration).
		Int64("bytes_in", e.In).
		Int64("bytes_out", e.Out).
		Int("worker_pid", e.PID).
		Msg("websocket closed")
	if h := l.g.hooks.WebSocketClose; h != nil {
		defer l.g.recoverHook()
		h(l.function, l.requestID, e)
	}
}
