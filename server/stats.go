package server

import (
	"time"

	"edgeway.dev/edgeway/internal/routable"
)

// FunctionStats is a function's state and counters, as /health reports
// them.
type FunctionStats struct {
	Name string // the function's name
	// Workers by state.
	Running, Starting, Draining int
	// InFlight is the requests in flight over every worker.
	InFlight int
	// Restarts counts workers replaced (crash, health, limits, max duration).
	Restarts uint64
	// LastStopReason is why a worker last stopped ("idle", "crash", ...).
	LastStopReason string
	// CrashLoopUntil is when a crash-looping function serves again; zero
	// when it is not crash-looping.
	CrashLoopUntil time.Time
	// Requests counts the requests answered since the Server started
	// (every status, refusals included); ColdStarts the workers started
	// while the function had none ready.
	Requests   uint64
	ColdStarts uint64
	Workers    []WorkerStats // the ready and draining workers
}

// WorkerStats is one worker process.
type WorkerStats struct {
	PID             int           // the Deno process
	State           string        // "running" or "draining"
	Uptime          time.Duration // since it was started
	InFlight        int           // requests in flight
	WebSockets      int           // open sessions
	Served          uint64        // requests answered
	BackgroundTasks int           // EdgeRuntime.waitUntil tasks pending
}

// Stats returns the named function's stats; ok is false when the Server
// serves no function of that name.
func (s *Server) Stats(name string) (st FunctionStats, ok bool) {
	fn := s.sup.Lookup([]byte(name))
	if fn == nil {
		return FunctionStats{}, false
	}
	return functionStats(fn), true
}

// Functions returns the stats of every function served, by name.
func (s *Server) Functions() []FunctionStats {
	fns := s.sup.Functions()
	out := make([]FunctionStats, 0, len(fns))
	for _, fn := range fns {
		out = append(out, functionStats(fn))
	}
	return out
}

func functionStats(fn *routable.Function) FunctionStats {
	st := fn.Status()
	out := FunctionStats{Name: fn.Name, Running: st.Running, Starting: st.Starting, Draining: st.Draining,
		InFlight: st.InFlight(), Restarts: st.Restarts, LastStopReason: st.LastStopReason,
		ColdStarts: fn.Metrics.ColdStarts.Get()}
	if st.CrashLoopUntil != nil {
		out.CrashLoopUntil = *st.CrashLoopUntil
	}
	for _, c := range fn.Metrics.Requests {
		if c != nil {
			out.Requests += c.Get()
		}
	}
	for _, w := range st.Workers {
		out.Workers = append(out.Workers, WorkerStats{PID: w.PID, State: w.State,
			Uptime: time.Duration(w.UptimeSeconds * float64(time.Second)), InFlight: w.InFlight,
			WebSockets: w.WebSockets, Served: w.Served, BackgroundTasks: w.BackgroundTasks})
	}
	return out
}
