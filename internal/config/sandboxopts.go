package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Values of --function-tmp.
const (
	TmpAuto    = "auto"    // private where the OS allows it, else shared
	TmpPrivate = "private" // a private /tmp per worker, or refuse to start
	TmpShared  = "shared"  // the host's /tmp
	TmpOff     = "off"     // no /tmp; only the worker's own TMPDIR
)

// Values of --function-tmp-setup: how a worker with a private /tmp gets
// its mount namespace.
const (
	TmpSetupAuto   = "auto"   // thread when the gateway runs as root and it works, else exec
	TmpSetupThread = "thread" // the spawner's thread enters a fresh namespace and forks Deno there, or refuse to start
	TmpSetupExec   = "exec"   // edgeway re-executes itself as a namespace helper that execs Deno
)

// DefaultInspectAddr is where --inspect without a value starts counting,
// as `deno --inspect` and `supabase functions serve --inspect` do.
const DefaultInspectAddr = "127.0.0.1:9229"

// InspectWallClock replaces the wall-clock limits (request timeout, boot
// timeout with --inspect-brk) while a debugger may hold a worker paused.
const InspectWallClock = 24 * time.Hour

// sysInfoNames are the --allow-sys names a function may be given through
// --function-sys: read-only facts about the machine. Names that reveal
// identities (uid, gid, homedir, userInfo), addresses (networkInterfaces)
// or change anything (setPriority) are Deno's and can only be granted
// through a permission profile.
var sysInfoNames = []string{"hostname", "osRelease", "osUptime", "loadavg", "cpus", "systemMemoryInfo", "statfs", "getPriority"}

// DefaultFunctionSys is --function-sys's default: Supabase grants
// "hostname"; the others are what npm packages read at import through
// node:os (os.cpus, os.totalmem, os.freemem, os.release, os.uptime,
// os.loadavg).
const DefaultFunctionSys = "hostname,osRelease,osUptime,loadavg,cpus,systemMemoryInfo"

// parseFunctionSys validates a comma-separated --function-sys list; "" and
// "none" grant nothing.
func parseFunctionSys(v string) ([]string, error) {
	if v == "" || v == "none" {
		return nil, nil
	}
	var out []string
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(sysInfoNames, name) {
			return nil, fmt.Errorf("unknown or not allowed sys name %q (allowed: %s; grant others with a permission profile)", name, strings.Join(sysInfoNames, ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// inspectSpec parses --inspect / --inspect-brk into *dst: alone it means
// DefaultInspectAddr, "false" turns it off, else host:port (the first
// worker's port; each further worker takes the next free one).
func inspectSpec(name, usage string, dst func(*Options) *string) spec {
	return spec{name: name, def: "", usage: usage, kind: kindBool, set: func(o *Options, v string) error {
		switch v {
		case "", "false", "0":
			*dst(o) = ""
			return nil
		case "true", "1":
			v = DefaultInspectAddr
		}
		host, port, err := net.SplitHostPort(v)
		if err != nil {
			return fmt.Errorf("want host:port (e.g. %s): %q", DefaultInspectAddr, v)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("port must be 1 to 65535: %q", v)
		}
		if host == "" {
			return fmt.Errorf("host must be given (e.g. %s): %q", DefaultInspectAddr, v)
		}
		*dst(o) = v
		return nil
	}}
}

// resolveInspect merges --inspect-brk into Inspect/InspectBrk (it wins:
// it also opens the inspector) and applies checkInspect and
// relaxForInspect.
func resolveInspect(o *Options) error {
	if o.inspectBrkAddr != "" {
		o.Inspect, o.InspectBrk = o.inspectBrkAddr, true
	}
	if err := checkInspect(o); err != nil {
		return err
	}
	relaxForInspect(o)
	return nil
}

// checkInspect refuses --inspect where it would hand code execution in
// every worker to whoever reaches the port: in production (no --dev) and
// on a non-loopback address, unless --inspect-force says so.
func checkInspect(o *Options) error {
	if o.Inspect == "" || o.InspectForce {
		return nil
	}
	flag := "--inspect"
	if o.InspectBrk {
		flag = "--inspect-brk"
	}
	if !o.Dev {
		return fmt.Errorf("flag %s: refused in production mode (no --dev): a debugger can run any code in the workers; add --inspect-force to allow it", flag)
	}
	host, _, _ := net.SplitHostPort(o.Inspect)
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("flag %s: %s is not a loopback address: anyone reaching it could run code in the workers; add --inspect-force to allow it", flag, o.Inspect)
	}
	return nil
}

// relaxForInspect lifts the wall-clock limits a paused debugger would
// trip: the wedge check, and the boot timeout with --inspect-brk (a worker
// waits for a debugger before running any code). Per-function limits are
// relaxed in applyInspect.
func relaxForInspect(o *Options) {
	if o.Inspect == "" {
		return
	}
	o.EventLoopTimeout = 0
	if o.InspectBrk && o.BootTimeout < InspectWallClock {
		o.BootTimeout = InspectWallClock
	}
}

// applyInspect relaxes a function's wall-clock limits while inspecting:
// the request timeout, health checks (a paused worker answers no ping) and
// the recycling at workerMaxDuration.
func applyInspect(c *FunctionConfig, o Options) {
	if o.Inspect == "" {
		return
	}
	if c.Timeout < InspectWallClock {
		c.Timeout = InspectWallClock
	}
	c.HealthCheckInterval = 0
	c.WorkerMaxDuration = 0
}
