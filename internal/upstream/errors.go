package upstream

import (
	"errors"
	"fmt"
)

// Errors returned by Acquire and Proxy. The gateway maps each to a status.
var (
	// ErrDial: the request never reached the worker; safe to retry elsewhere.
	ErrDial = errors.New("upstream: cannot connect to worker")
	// ErrTimeout: the request's deadline passed before the response head.
	ErrTimeout = errors.New("upstream: timeout")
	// ErrWorker: the worker broke the connection or sent a malformed response.
	ErrWorker = errors.New("upstream: worker failed the request")
	// ErrBoot: the worker the request waited for failed to boot.
	ErrBoot = errors.New("upstream: worker failed to boot")
	// ErrCrashLoop: the function crashed too often and is cooling down.
	ErrCrashLoop = errors.New("upstream: function is in a crash loop")
	// ErrOverloaded: every worker is at maxConcurrency and the queue is full
	// or the wait for a slot expired.
	ErrOverloaded = errors.New("upstream: function overloaded")
	// ErrNoWorkerSlot: the function has no worker and none can start, the
	// gateway's worker budget being spent with every worker busy. It is
	// an ErrOverloaded (errors.Is).
	ErrNoWorkerSlot = fmt.Errorf("%w: the gateway's worker budget is spent and every worker is busy", ErrOverloaded)
	// ErrClosed: the function is being removed or the gateway is stopping.
	ErrClosed = errors.New("upstream: function is shutting down")
	// ErrClientBody: the client's request body broke (malformed chunking,
	// the client went away) while it was being forwarded.
	ErrClientBody = errors.New("upstream: client request body is malformed or incomplete")
	// ErrCollateral: the request was written on a shared (pipelined) worker
	// connection that another request broke, and it is not idempotent, so
	// it cannot be retried. Not the function's failure: not counted in the
	// circuit breaker.
	ErrCollateral = errors.New("upstream: shared worker connection broken by another request")
	// ErrMemoryLimit: the worker died of its memory limit mid-request.
	ErrMemoryLimit = errors.New("upstream: worker hit its memory limit")
)
