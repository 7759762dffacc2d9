// Package lifecycle runs the Deno worker processes behind each function.
//
// Every function has one goroutine (Manager.run) that owns its workers and
// timers: it starts workers on demand and to keep minWorkers, replaces
// crashed, unhealthy, too old or idle ones, and publishes each change as an
// immutable upstream.Snapshot. Nothing else writes a function's worker set;
// other goroutines (process waiters, control-socket readers, the hot path's
// nudges) only send it events.
//
// A worker is `deno run --preload <bootstrap> <entry>`, its sockets in the environment,
// with explicit permission flags; or, on a cold start, a pre-booted
// `deno run <bootstrap>` from the prewarm pool that is handed its function
// (prewarm.go). Before user code runs, the bootstrap
// connects to a control socket the gateway listens on and then removes, so
// readiness, background-task counts and health pings travel on a channel user
// code cannot reach. Workers die with the gateway: they are started from a
// dedicated, locked OS thread with PR_SET_PDEATHSIG, and they exit when the
// control connection closes.
package lifecycle
