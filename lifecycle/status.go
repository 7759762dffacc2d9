package lifecycle

import (
	"time"

	"edgeway/upstream"
)

// WorkerStatus is one worker as /health shows it.
type WorkerStatus struct {
	ID              uint64  `json:"id"`
	PID             int     `json:"pid"`
	State           string  `json:"state"` // running | draining
	UptimeSeconds   float64 `json:"uptimeSeconds"`
	InFlight        int     `json:"inFlight"`
	WebSockets      int     `json:"webSockets"`
	Served          uint64  `json:"served"`
	BackgroundTasks int     `json:"backgroundTasks"`
}

// FunctionStatus is a function's visible lifecycle state.
type FunctionStatus struct {
	Name           string         `json:"name"`
	Running        int            `json:"running"`
	Starting       int            `json:"starting"`
	Draining       int            `json:"draining"`
	Restarts       uint64         `json:"restarts"`
	LastStopReason string         `json:"lastStopReason,omitempty"`
	CrashLoopUntil *time.Time     `json:"crashLoopUntil,omitempty"`
	Workers        []WorkerStatus `json:"workers"`

	refs   []*upstream.Worker // live counters, read by Status
	starts []time.Time
}

// snapshotStatus records the manager's state; live counters are read when
// Status is called.
func (m *Manager) snapshotStatus() *FunctionStatus {
	st := &FunctionStatus{
		Name:           m.fn.Name,
		Running:        len(m.ready),
		Starting:       m.starting,
		Draining:       len(m.stopping),
		Restarts:       m.restarts,
		LastStopReason: m.lastStop,
		Workers:        []WorkerStatus{},
	}
	if m.crashLooping() {
		t := m.crashLoopUntil
		st.CrashLoopUntil = &t
	}
	add := func(p *process, state string) {
		st.Workers = append(st.Workers, WorkerStatus{ID: p.id, PID: p.pid, State: state, BackgroundTasks: p.bgTasks})
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

// Status returns the function's state with live per-worker counters.
func (m *Manager) Status() FunctionStatus {
	st := *m.status.Load()
	now := time.Now()
	ws := make([]WorkerStatus, len(st.Workers))
	for i, w := range st.Workers {
		w.UptimeSeconds = now.Sub(st.starts[i]).Seconds()
		w.InFlight = st.refs[i].InFlight()
		w.WebSockets = st.refs[i].WebSockets()
		w.Served = st.refs[i].Served()
		ws[i] = w
	}
	st.Workers = ws
	st.refs, st.starts = nil, nil
	return st
}

func (st FunctionStatus) inFlight() int {
	n := 0
	for _, w := range st.Workers {
		n += w.InFlight
	}
	return n
}

func (st FunctionStatus) count(state string) int {
	switch state {
	case "running":
		return st.Running
	case "starting":
		return st.Starting
	default:
		return st.Draining
	}
}
