package routable

import "time"

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
}

// InFlight is the requests in flight over every worker.
func (st FunctionStatus) InFlight() int {
	n := 0
	for _, w := range st.Workers {
		n += w.InFlight
	}
	return n
}

// Count is the number of workers in state: running, starting or draining.
func (st FunctionStatus) Count(state string) int {
	switch state {
	case "running":
		return st.Running
	case "starting":
		return st.Starting
	default:
		return st.Draining
	}
}
