package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"edgeway.dev/edgeway/internal/lifecycle"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/secure"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/rs/zerolog"
)

// Upstream connection settings, the gateway's defaults.
const (
	maxIdleConns = 64
	dialTimeout  = 2 * time.Second
	bufferSize   = 16 << 10 // caps a response head's size
	exitWait     = time.Second
	// exitGrace is how long a worker told to terminate has to exit after
	// MaxDuration (beyond RequestTimeout for its requests) before it is
	// killed, as the gateway's --shutdown-grace.
	exitGrace = 10 * time.Second
)

// Worker is one running Deno worker process. Its methods are safe for
// concurrent use. Create it with Start.
type Worker struct {
	single  *lifecycle.Single
	runDir  string
	timeout time.Duration

	stopping   atomic.Bool           // no new calls
	cause      atomic.Pointer[error] // why calls are refused, first cause wins
	failures   atomic.Uint64
	websockets atomic.Int64
	wsZero     chan struct{} // signalled when the last WebSocket closes
	stopOnce   sync.Once     // the stop sequence runs once
	done       chan struct{} // closed once the process exited and the folder is gone
	maxTimer   *time.Timer
}

// Stats is a snapshot of a worker's counters.
type Stats struct {
	PID             int           // the Deno process's id
	Requests        uint64        // exchanges finished (answered or failed)
	InFlight        int           // exchanges under way
	Errors          uint64        // calls that failed with an error (timeouts included)
	WebSockets      int           // open WebSocket connections
	BackgroundTasks int           // pending EdgeRuntime.waitUntil tasks, as last reported
	MemoryBytes     int64         // anonymous resident memory (/proc/<pid>/statm); 0 once exited
	Uptime          time.Duration // since the process was spawned
	Exited          bool          // the process has exited
}

// Start spawns a worker and returns once it serves. ctx bounds the boot
// (with Options.BootTimeout): its deadline, and a cancel, which kills the
// booting process; after Start returns ctx has no effect on the worker. A
// boot failure's error carries the last lines the worker wrote to stderr.
func Start(ctx context.Context, o Options) (*Worker, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deno, err := o.denoPath()
	if err != nil {
		return nil, err
	}
	perms, err := o.permissions()
	if err != nil {
		return nil, err
	}
	deps, err := o.deps()
	if err != nil {
		return nil, err
	}
	env, err := lifecycle.SingleEnv(o.Env, os.Environ())
	if err != nil {
		return nil, fmt.Errorf("worker: Options.Env: %w", err)
	}
	runDir, err := lifecycle.NewSingleRunDir()
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(runDir)
		}
	}()
	ent, err := o.resolveEntry(runDir)
	if err != nil {
		return nil, err
	}
	boot := o.BootTimeout
	if boot <= 0 {
		boot = DefaultBootTimeout
	}
	if d, has := ctx.Deadline(); has && time.Until(d) < boot {
		boot = time.Until(d)
	}
	maxLine := o.MaxLogLine
	if maxLine <= 0 {
		maxLine = DefaultMaxLogLine
	}
	var mask func(string) string
	if !o.UnmaskedLogs && o.OnLog != nil {
		mask = secure.NewMasker(o.Env).Mask
	}
	single, err := lifecycle.StartSingle(lifecycle.SingleOptions{
		Deno:          deno,
		RunDir:        runDir,
		Dir:           ent.dir,
		Entry:         ent.module,
		Readable:      ent.readable,
		Perms:         perms,
		Deps:          deps,
		Env:           env,
		MemoryLimitMB: o.MemoryLimitMB,
		DenoFlags:     o.DenoFlags,
		BootTimeout:   boot,
		Cancel:        ctx.Done(),
		OnLog:         o.OnLog,
		Mask:          mask,
		MaxLine:       maxLine,
		Upstream: upstream.WorkerOptions{
			MaxIdleConns: maxIdleConns,
			DialTimeout:  dialTimeout,
			BufferSize:   bufferSize,
			ExitWait:     exitWait,
		},
	})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("worker: boot: %w", cerr)
		}
		return nil, fmt.Errorf("worker: boot failed: %w", err)
	}
	ok = true
	w := &Worker{
		single:  single,
		runDir:  runDir,
		timeout: o.RequestTimeout,
		wsZero:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if w.timeout <= 0 {
		w.timeout = DefaultRequestTimeout
	}
	if o.MaxDuration > 0 {
		w.maxTimer = time.AfterFunc(o.MaxDuration, func() {
			w.setCause(fmt.Errorf("%w: it ran for its MaxDuration (%s)", ErrExited, o.MaxDuration))
			ok := observe.Guard(zerolog.Nop(), observe.PanicLifecycle, func() {
				ctx, cancel := context.WithTimeout(context.Background(), w.timeout+exitGrace)
				defer cancel()
				w.stop(ctx, "wall_clock")
			})
			if !ok {
				w.single.Kill() // it must not outlive MaxDuration
			}
		})
	}
	go w.reap() // after maxTimer is set: reap stops it
	if err := ctx.Err(); err != nil {
		// Cancelled as the boot ended: the caller no longer wants it.
		w.Terminate()
		return nil, fmt.Errorf("worker: boot: %w", err)
	}
	return w, nil
}

// reap waits for the process to exit, records why if nothing else did, and
// removes the worker's private folder.
func (w *Worker) reap() {
	<-w.single.Exited()
	defer close(w.done) // whatever happens: Shutdown and Terminate wait for it
	observe.Guard(zerolog.Nop(), observe.PanicLifecycle, w.settleExit)
}

// settleExit records why the process ended and removes its folder.
func (w *Worker) settleExit() {
	if w.single.DiedOfMemoryLimit() {
		w.setCause(fmt.Errorf("%w: %w (%s)", ErrExited, ErrMemoryLimit, w.single.ExitReason()))
	} else {
		w.setCause(fmt.Errorf("%w: %s", ErrExited, w.single.ExitReason()))
	}
	w.stopping.Store(true)
	if w.maxTimer != nil {
		w.maxTimer.Stop()
	}
	os.RemoveAll(w.runDir)
}

// setCause records why calls are refused from now on, unless a cause is
// already recorded.
func (w *Worker) setCause(err error) {
	w.cause.CompareAndSwap(nil, &err)
}

// Err is nil while the worker serves, and afterwards the error calls fail
// with: ErrClosed after Shutdown or Terminate, or an error wrapping
// ErrExited (and ErrMemoryLimit) that says why the process ended.
func (w *Worker) Err() error {
	if !w.stopping.Load() {
		return nil
	}
	if c := w.cause.Load(); c != nil {
		return *c
	}
	return ErrClosed
}

// Exited is closed once the process has exited, for whatever reason, and
// the worker's private folder has been removed. A worker is never
// restarted: start a new one.
func (w *Worker) Exited() <-chan struct{} { return w.done }

// PID is the Deno process's id.
func (w *Worker) PID() int { return w.single.PID() }

// Stats returns the worker's counters. It reads /proc once for the memory
// figure and is cheap enough to call every second.
func (w *Worker) Stats() Stats {
	uw := w.single.Worker()
	s := Stats{
		PID:             w.single.PID(),
		Requests:        uw.Served(),
		InFlight:        uw.InFlight(),
		Errors:          w.failures.Load(),
		WebSockets:      int(w.websockets.Load()),
		BackgroundTasks: w.single.BackgroundTasks(),
		Uptime:          time.Since(w.single.Started()),
	}
	select {
	case <-w.single.Exited():
		s.Exited = true
	default:
		s.MemoryBytes = w.single.Memory()
	}
	return s
}

// Shutdown stops the worker gracefully: new calls fail with ErrClosed at
// once; the function gets beforeunload (reason "termination"); in-flight
// requests (a streamed response body until it is read or closed) and open
// WebSockets finish; it gets drain, then is told to
// terminate, which lets its server finish and its background tasks
// (EdgeRuntime.waitUntil) settle before it exits. When ctx ends first the
// process is killed and ctx's error returned. Shutdown returns once the
// process has exited and its private folder is removed; calling it again,
// or after Terminate, waits for the same end.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.setCause(ErrClosed)
	if w.stop(ctx, "termination") {
		return ctx.Err()
	}
	return nil
}

// stop runs the graceful stop sequence once; later callers wait for the
// process to exit (or their ctx). It returns once the process has exited,
// and reports whether ctx ended first and this call killed it.
func (w *Worker) stop(ctx context.Context, reason string) (killed bool) {
	w.stopOnce.Do(func() {
		w.refuseNew()
		w.single.Send("beforeunload " + reason)
		drained := w.single.Worker().Drain()
		select {
		case <-drained:
		case <-w.done:
			return
		case <-ctx.Done():
			return // killed below
		}
		for w.websockets.Load() > 0 {
			select {
			case <-w.wsZero:
			case <-w.done:
				return
			case <-ctx.Done():
				return
			}
		}
		w.single.Send("drain")
		w.single.Terminate()
	})
	select {
	case <-w.done:
		return false
	case <-ctx.Done():
		w.single.Kill()
		<-w.done
		return true
	}
}

// refuseNew makes new calls fail and closes the pool, so a call that
// raced past the check does not wait for a worker.
func (w *Worker) refuseNew() {
	w.stopping.Store(true)
	w.single.Pool().Publish(upstream.Snapshot{Closed: true})
}

// Terminate kills the worker at once (SIGKILL): in-flight calls fail, open
// WebSockets break, and the function gets no event. It returns once the
// process has exited and its private folder is removed.
func (w *Worker) Terminate() {
	w.setCause(ErrClosed)
	w.refuseNew()
	w.single.Kill()
	<-w.done
}

// refusal is the error a new call gets, or nil while the worker serves.
func (w *Worker) refusal() error {
	if !w.stopping.Load() {
		return nil
	}
	return w.Err()
}

// exitedNow reports whether the process has exited.
func (w *Worker) exitedNow() bool {
	select {
	case <-w.single.Exited():
		return true
	default:
		return false
	}
}

// Errors calls fail with; test them with errors.Is.
var (
	// ErrClosed: Shutdown or Terminate was called.
	ErrClosed = errors.New("worker: shut down")
	// ErrExited: the process exited by itself (a crash, its memory limit,
	// MaxDuration, a broken control protocol); the error says why.
	ErrExited = errors.New("worker: the worker process has exited")
	// ErrMemoryLimit: the process reached Options.MemoryLimitMB (it also
	// wraps ErrExited).
	ErrMemoryLimit = errors.New("worker: the worker reached its memory limit")
	// ErrTimeout: the exchange outlasted Options.RequestTimeout or the
	// request context's deadline. The worker keeps running.
	ErrTimeout = errors.New("worker: request timed out")
	// ErrBroken: the worker broke the exchange (it closed the connection,
	// or sent a malformed or oversized response head) but is still
	// running.
	ErrBroken = errors.New("worker: the worker broke the exchange")
	// ErrRequestBody: reading the request body failed.
	ErrRequestBody = errors.New("worker: the request body failed")
	// ErrUpgrade: a request asked for a protocol upgrade; use
	// DialWebSocket.
	ErrUpgrade = errors.New("worker: protocol upgrades go through DialWebSocket")
)
