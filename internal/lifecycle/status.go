package lifecycle

import (
	"time"

	"edgeway.dev/edgeway/internal/routable"
	"edgeway.dev/edgeway/internal/upstream"
)

// statusSnapshot is a Manager's state as last recorded, with the live
// counters Status reads.
type statusSnapshot struct {
	routable.FunctionStatus
	refs   []*upstream.Worker // live counters, read by Status
	starts []time.Time
}

// snapshotStatus records the manager's state; live counters are read when
// Status is called.
func (m *Manager) snapshotStatus() *statusSnapshot {
	st := &statusSnapshot{FunctionStatus: routable.FunctionStatus{
		Name:           m.fn.Name,
		Running:        len(m.ready),
		Starting:       m.starting,
		Draining:       len(m.stopping),
		Restarts:       m.restarts,
		LastStopReason: m.lastStop,
		Workers:        []routable.WorkerStatus{},
	}}
	if m.crashLooping() {
		t := m.crashLoopUntil
		st.CrashLoopUntil = &t
	}
	add := func(p *process, state string) {
		st.Workers = append(st.Workers, routable.WorkerStatus{ID: p.id, PID: p.pid, State: state, BackgroundTasks: p.bgTasks})
		st.refs = append(st.refs, p.worker)
		st.starts = append(st.starts, p.started)
	}
	for _, p := range m.ready {
		add(p, "running")
	}
	for _, p := range m.stopping {
		add(p, "draining")
	}
	return st
}

// Status returns the function's state with live per-worker counters; it
// makes the Manager a routable.StatusReporter.
func (m *Manager) Status() routable.FunctionStatus {
	snap := m.status.Load()
	st := snap.FunctionStatus
	now := time.Now()
	ws := make([]routable.WorkerStatus, len(st.Workers))
	for i, w := range st.Workers {
		w.UptimeSeconds = now.Sub(snap.starts[i]).Seconds()
		w.InFlight = snap.refs[i].InFlight()
		w.WebSockets = snap.refs[i].WebSockets()
		w.Served = snap.refs[i].Served()
		ws[i] = w
	}
	st.Workers = ws
	return st
}
