package server

import (
	"time"

	"edgeway.dev/edgeway/internal/gateway"
	"edgeway.dev/edgeway/internal/lifecycle"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// Hooks are the host program's callbacks on the gateway's events, in the
// style of net/http/httputil.ReverseProxy's: every field may be nil, and
// a nil one costs nothing. A panic in a hook is recovered, logged and
// counted in edgeway_panics_total{where="hook"}: it never stops the
// gateway.
//
// OnRequestStats and OnAuthFailure run on the request's goroutine, in the
// request's path: they must be fast and must not block. Every other hook
// is handed to one goroutine of the Server's that runs them one at a time
// in order: a slow hook delays only the hooks after it, never a worker or
// a request. When 4096 events wait for it, further ones are dropped and
// counted in edgeway_hook_events_dropped_total.
type Hooks struct {
	// OnFunctionReady: the function's first worker is ready; again after
	// it went cold, and when a reload's new version has its first worker.
	OnFunctionReady func(function string)
	// OnFunctionCold: the function's last worker went away, for any reason
	// but a reload replacing it (idle timeout, crash, limit, shutdown).
	OnFunctionCold func(function string)
	// OnWorkerUnhealthy: a worker missed failures health-check pings in a
	// row (--health-check-max-failures) and is killed and replaced.
	OnWorkerUnhealthy func(function string, pid, failures int)
	// OnLog: one line a worker wrote (a stack trace's frames stay with the
	// line before them), after secret masking. It is also in the log.
	OnLog func(LogLine)
	// OnRequestStats: a request routed to a function was answered,
	// refusals included (401, 429, 503 ...). It runs on the request's
	// goroutine and must be fast; it allocates nothing on the gateway's
	// side.
	OnRequestStats func(RequestStats)
	// OnAuthFailure: a request was refused 401 by the authenticator
	// (Config.Authenticator or the built-in --auth). ctx's response holds
	// the default refusal ({"code":"UNAUTHORIZED",...}); the hook may
	// replace it (status, headers, body) to refuse its own way. It runs
	// on the request's goroutine; after a panic the default refusal is
	// written again.
	OnAuthFailure func(ctx *fasthttp.RequestCtx, function string, err error)
	// OnWebSocketConnect: a WebSocket session started (the function
	// answered 101).
	OnWebSocketConnect func(function, requestID string)
	// OnWebSocketClose: a WebSocket session ended.
	OnWebSocketClose func(WebSocketClose)
	// OnWebSocketError: an upgrade request did not become a session: the
	// gateway refused it (no slot, no worker), the worker failed, or the
	// function answered with a status other than 101.
	OnWebSocketError func(function, requestID string, err error)
}

// LogLine is one line a worker wrote.
type LogLine struct {
	Function string // the function's name
	PID      int    // the worker's process id
	Stream   string // "stdout" or "stderr"
	Line     string // the line, with the stack frames that followed it
}

// RequestStats describes one answered request.
type RequestStats struct {
	Function string // the function's name
	Status   int    // the response's status, the gateway's own refusals included
	// Duration is from the request's arrival to its response head; a
	// streamed body is still being sent.
	Duration time.Duration
	// RequestBytes and ResponseBytes are the bodies' declared lengths
	// (Content-Length); -1 when streamed (chunked) or not declared.
	RequestBytes, ResponseBytes int
}

// WebSocketClose describes a finished WebSocket session.
type WebSocketClose struct {
	Function  string        // the function's name
	RequestID string        // the upgrade request's X-Request-Id
	Code      int           // the first close code either side sent; 1006 when none did
	ClosedBy  string        // "client", "worker", "gateway", or "" when nobody sent a close frame
	Duration  time.Duration // from the upgrade to the close
	BytesIn   int64         // client to worker, after the handshake
	BytesOut  int64         // worker to client
}

// hookQueue is how many events may wait for the hook goroutine.
const hookQueue = 4096

var droppedHookEvents = metrics.GetOrCreateCounter(`edgeway_hook_events_dropped_total`)

// dispatcher runs the asynchronous hooks on one goroutine, in order.
type dispatcher struct {
	events chan func()
	done   chan struct{}
	ended  chan struct{}
	log    zerolog.Logger
}

func newDispatcher(log zerolog.Logger) *dispatcher {
	d := &dispatcher{events: make(chan func(), hookQueue), done: make(chan struct{}), ended: make(chan struct{}), log: log}
	go d.run()
	return d
}

// post queues f, or drops it when the queue is full.
func (d *dispatcher) post(f func()) {
	select {
	case d.events <- f:
	default:
		droppedHookEvents.Inc()
	}
}

func (d *dispatcher) run() {
	defer close(d.ended)
	for {
		select {
		case f := <-d.events:
			observe.Guard(d.log, observe.PanicHook, f)
		case <-d.done:
			for { // what was queued before the stop still runs
				select {
				case f := <-d.events:
					observe.Guard(d.log, observe.PanicHook, f)
				default:
					return
				}
			}
		}
	}
}

// stop runs what is queued and ends the goroutine, waiting at most until
// deadline for a slow hook.
func (d *dispatcher) stop(timeout time.Duration) {
	close(d.done)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-d.ended:
	case <-t.C:
	}
}

// lifecycleHooks adapts the lifecycle's hooks to h through d.
func lifecycleHooks(h Hooks, d *dispatcher) lifecycle.Hooks {
	var lh lifecycle.Hooks
	if f := h.OnFunctionReady; f != nil {
		lh.FunctionReady = func(fn string) { d.post(func() { f(fn) }) }
	}
	if f := h.OnFunctionCold; f != nil {
		lh.FunctionCold = func(fn string) { d.post(func() { f(fn) }) }
	}
	if f := h.OnWorkerUnhealthy; f != nil {
		lh.WorkerUnhealthy = func(fn string, pid, failures int) { d.post(func() { f(fn, pid, failures) }) }
	}
	if f := h.OnLog; f != nil {
		lh.Log = func(fn string, pid int, stream, line string) {
			d.post(func() { f(LogLine{Function: fn, PID: pid, Stream: stream, Line: line}) })
		}
	}
	return lh
}

// gatewayHooks adapts the gateway's hooks to h: the request-path ones
// directly (the gateway contains their panics), the WebSocket ones
// through d.
func gatewayHooks(h Hooks, d *dispatcher) gateway.Hooks {
	var gh gateway.Hooks
	if f := h.OnRequestStats; f != nil {
		gh.RequestStats = func(fn string, status int, dur time.Duration, reqBytes, respBytes int) {
			f(RequestStats{Function: fn, Status: status, Duration: dur, RequestBytes: reqBytes, ResponseBytes: respBytes})
		}
	}
	gh.AuthFailure = h.OnAuthFailure
	if f := h.OnWebSocketConnect; f != nil {
		gh.WebSocketOpen = func(fn, id string) { d.post(func() { f(fn, id) }) }
	}
	if f := h.OnWebSocketClose; f != nil {
		gh.WebSocketClose = func(fn, id string, e upstream.SessionEnd) {
			d.post(func() {
				f(WebSocketClose{Function: fn, RequestID: id, Code: e.Code, ClosedBy: e.By, Duration: e.Duration, BytesIn: e.In, BytesOut: e.Out})
			})
		}
	}
	if f := h.OnWebSocketError; f != nil {
		gh.WebSocketError = func(fn, id string, err error) { d.post(func() { f(fn, id, err) }) }
	}
	return gh
}
