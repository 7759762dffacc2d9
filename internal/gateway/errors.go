package gateway

import (
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrorHeader tells a client an error was made by the gateway, not by the
// function. Functions cannot set it (internal prefix).
const ErrorHeader = "x-edgeway-error"

// Error codes the gateway answers with.
const (
	CodeNotFound     = "NOT_FOUND"
	CodeBootError    = "BOOT_ERROR"
	CodeWorkerError  = "WORKER_ERROR"
	CodeTimeout      = "TIMEOUT"
	CodeCrashLoop    = "CRASH_LOOP"
	CodeOverloaded   = "OVERLOADED"
	CodeWorkerLimit  = "WORKER_LIMIT"
	CodeShuttingDown = "SHUTTING_DOWN"
	CodeBadRequest   = "BAD_REQUEST"
	CodeTooLarge     = "PAYLOAD_TOO_LARGE"
	CodeReqTimeout   = "REQUEST_TIMEOUT"
)

// StatusWorkerLimit is Supabase's status for a worker killed by a resource
// limit.
const StatusWorkerLimit = 546

type gatewayError struct {
	status int
	code   []byte
	body   []byte
}

func newError(status int, code, message string) gatewayError {
	body := `{"code":"` + code + `","message":` + strconv.Quote(message) + `}`
	return gatewayError{status: status, code: []byte(code), body: []byte(body)}
}

// Prebuilt so that refusing a request allocates nothing.
var (
	errNotFound     = newError(fasthttp.StatusNotFound, CodeNotFound, "function not found")
	errBoot         = newError(fasthttp.StatusServiceUnavailable, CodeBootError, "function failed to start")
	errWorker       = newError(fasthttp.StatusBadGateway, CodeWorkerError, "function worker failed")
	errTimeout      = newError(fasthttp.StatusGatewayTimeout, CodeTimeout, "function did not respond in time")
	errCrashLoop    = newError(fasthttp.StatusServiceUnavailable, CodeCrashLoop, "function is crashing repeatedly; retry later")
	errOverloaded   = newError(fasthttp.StatusServiceUnavailable, CodeOverloaded, "function is at capacity; retry later")
	errWorkerLimit  = newError(StatusWorkerLimit, CodeWorkerLimit, "function exceeded its memory limit")
	errShuttingDown = newError(fasthttp.StatusServiceUnavailable, CodeShuttingDown, "gateway is shutting down")
	errBadRequest   = newError(fasthttp.StatusBadRequest, CodeBadRequest, "malformed request")
	errTooLarge     = newError(fasthttp.StatusRequestEntityTooLarge, CodeTooLarge, "request body too large")
	errReqTimeout   = newError(fasthttp.StatusRequestTimeout, CodeReqTimeout, "request not received in time")
)

var (
	contentTypeJSON = []byte("application/json")
	errorHeaderKey  = []byte(ErrorHeader)
)

// write replaces whatever response was in progress with the error. A
// Connection: close already decided for the response stays: the
// connection may not be reusable (an unread or broken body).
func (e gatewayError) write(ctx *fasthttp.RequestCtx) {
	resp := &ctx.Response
	closeConn := resp.ConnectionClose()
	resp.Reset()
	if closeConn {
		resp.SetConnectionClose()
	}
	resp.SetStatusCode(e.status)
	resp.Header.SetContentTypeBytes(contentTypeJSON)
	resp.Header.SetBytesKV(errorHeaderKey, e.code)
	resp.SetBodyRaw(e.body)
}

// writeRetryAfter writes the error with Retry-After in whole seconds (≥1).
func (e gatewayError) writeRetryAfter(ctx *fasthttp.RequestCtx, after time.Duration) {
	e.write(ctx)
	secs := int64((after + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	var buf [20]byte
	ctx.Response.Header.SetBytesKV(hdrRetryAfter, strconv.AppendInt(buf[:0], secs, 10))
}
