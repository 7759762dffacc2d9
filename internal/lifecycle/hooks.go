package lifecycle

import "edgeway.dev/edgeway/internal/observe"

// Hooks are a host program's callbacks on lifecycle events (the public
// server package sets them with SetHooks). Every field may be nil. They
// run on a function's lifecycle goroutine or on a worker's output
// goroutine, so they must return at once (the server package hands each
// event to a goroutine of its own); a panic is recovered and counted in
// edgeway_panics_total{where="hook"}.
type Hooks struct {
	// FunctionReady: the function's first worker is ready (again after
	// it went cold; once more when a reload's new version is ready).
	FunctionReady func(function string)
	// FunctionCold: the function's last ready worker went away, for any
	// reason but a reload replacing it (idle, crash, limit, shutdown).
	FunctionCold func(function string)
	// WorkerUnhealthy: a worker missed --health-check-max-failures pings
	// in a row and is being killed and replaced.
	WorkerUnhealthy func(function string, pid, failures int)
	// Log: one line (with its stack frames) a worker wrote on stdout or
	// stderr, after secret masking; stream is "stdout" or "stderr".
	Log func(function string, pid int, stream, line string)
}

// SetHooks installs the host's hooks. Call it before Start.
func (s *Supervisor) SetHooks(h Hooks) { s.hooks = h }

// callHook runs f, recovering and counting a panic.
func (s *Supervisor) callHook(f func()) {
	observe.Guard(s.log, observe.PanicHook, f)
}

// readyEdge reports the function going from no ready worker to one
// (FunctionReady) and back (FunctionCold). publish calls it after every
// change.
func (m *Manager) readyEdge() {
	ready := len(m.ready) > 0
	if ready == m.wasReady {
		return
	}
	m.wasReady = ready
	h := m.s.hooks
	switch {
	case ready && h.FunctionReady != nil:
		m.s.callHook(func() { h.FunctionReady(m.fn.Name) })
	case !ready && !m.retired && h.FunctionCold != nil:
		m.s.callHook(func() { h.FunctionCold(m.fn.Name) })
	}
}
