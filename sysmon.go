package main

import (
	"os"
	"strings"
	"syscall"

	"edgeway.dev/edgeway/internal/config"
)

// sysmonAwake is the GODEBUG setting that keeps Go's sysmon thread from
// parking: a schedtrace period of 2^31-1 ms (24.8 days) never prints on a
// machine up for less than that, and then once per period.
const sysmonAwake = "schedtrace=2147483647"

// keepSysmonAwake re-executes `edgeway serve` with sysmonAwake added to
// GODEBUG (--go-sysmon-awake, default on), before anything is opened; the
// process keeps its pid. The runtime reads this setting only at start, and
// //go:debug does not take it.
//
// Why: when the gateway goes idle between requests, Go's sysmon parks
// (all Ps idle); the next request's first system call wakes it
// (entersyscall), and it then polls every 20 µs until the gateway is idle
// again: a futex wake-up, nanosleeps and context switches per request,
// about a quarter of the gateway's CPU at 2,000 req/s (perf). Kept awake,
// sysmon backs off to one wake-up per 10 ms instead. Measured (bench/ab.py,
// vegeta 2,000 req/s, paired rounds): hello 105 → 75, echo1k 140 → 92,
// stream 122 → 93 µs of gateway CPU per request; saturated (wrk -c64) no
// change.
func keepSysmonAwake(args []string) {
	env := os.Getenv("GODEBUG")
	if strings.Contains(env, "schedtrace=") {
		return // already set (by us, before this exec, or by the operator)
	}
	opts, err := config.Parse(args, os.Getenv)
	if err != nil || !opts.GoSysmonAwake {
		return // serve reports a bad flag itself
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	if env != "" {
		env += ","
	}
	// Replaced, not appended: the first of two GODEBUG entries is the one
	// read, and the re-executed process would exec again, forever.
	environ := []string{"GODEBUG=" + env + sysmonAwake}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			environ = append(environ, kv)
		}
	}
	syscall.Exec(exe, os.Args, environ) // returns only if it failed: serve as we are
}
