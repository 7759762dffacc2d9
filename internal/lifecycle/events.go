package lifecycle

import "time"

// Lifecycle events dispatched to user code, as Supabase's edge runtime does:
// the gateway sends "beforeunload <reason>" when it begins a planned stop
// of a worker (the bootstrap dispatches a cancelable CustomEvent whose
// detail.reason is the reason) and "drain" once a retired worker has
// answered everything, just before SIGTERM. Workers killed outright (a
// hard limit, a wedged event loop, a protocol violation) get neither:
// nothing would run them.

// controlWriteTimeout bounds a control message write to a worker; the
// socket buffer takes these few bytes at once unless the worker is stuck.
const controlWriteTimeout = time.Second

// unloadReason maps a stop reason to beforeunload's detail.reason.
func unloadReason(stopReason string) string {
	switch stopReason {
	case ReasonCPU:
		return "cpu"
	case ReasonMemory:
		return "memory"
	case ReasonMaxDuration:
		return "wall_clock"
	case ReasonIdle:
		return "idle"
	default: // shutdown, reload, background task timeout, health, budget
		return "termination"
	}
}
