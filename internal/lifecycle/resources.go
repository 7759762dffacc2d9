package lifecycle

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Resource limits of a worker process, enforced by sampling /proc every
// --resource-check-interval from the Manager goroutine:
//
//   - memory: the process's anonymous resident memory (RSS minus the
//     file-backed pages of the Deno binary) above memoryLimitMb plus
//     --memory-overhead-mb kills it. V8's heap limit only bounds the JS heap;
//     ArrayBuffers and other memory outside it were unbounded. cgroup v2
//     memory.max would be exact, but the gateway may not create cgroups on
//     most hosts (containers, cgroup v1 hybrids such as this one's), so the
//     watchdog is the one mechanism everywhere.
//   - CPU: utime+stime since the worker became ready. The soft limit
//     retires it (drained, new requests go to a fresh worker), the hard
//     limit kills it.
//
// Whether a worker died of a limit is decided from what the gateway itself
// did (the watchdog) or from the exit status (V8's fatal out-of-memory ends
// Deno with SIGTRAP), never from text the worker printed.

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times. It is
// 100 on every Linux the gateway runs on (sysconf(_SC_CLK_TCK) needs cgo).
const clockTicks = 100

var pageSize = int64(os.Getpagesize())

// procUsage is one sample of a worker process.
type procUsage struct {
	anon int64         // resident memory not backed by files, bytes
	cpu  time.Duration // user + system time since the process started
}

// readUsage samples /proc/<pid>/statm and /proc/<pid>/stat.
func readUsage(pid int) (procUsage, error) {
	var u procUsage
	dir := "/proc/" + strconv.Itoa(pid)
	statm, err := os.ReadFile(dir + "/statm")
	if err != nil {
		return u, err
	}
	if u.anon, err = parseStatm(statm); err != nil {
		return u, fmt.Errorf("%s/statm: %w", dir, err)
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return u, err
	}
	if u.cpu, err = parseStatCPU(stat); err != nil {
		return u, fmt.Errorf("%s/stat: %w", dir, err)
	}
	return u, nil
}

// parseStatm returns resident minus shared (file-backed) pages, in bytes.
func parseStatm(b []byte) (int64, error) {
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, errors.New("too few fields")
	}
	resident, err1 := strconv.ParseInt(string(f[1]), 10, 64)
	shared, err2 := strconv.ParseInt(string(f[2]), 10, 64)
	if err1 != nil || err2 != nil || resident < 0 || shared < 0 {
		return 0, errors.New("malformed numbers")
	}
	return max(resident-shared, 0) * pageSize, nil
}

// parseStatCPU returns utime+stime. The command name (field 2) is in
// parentheses and may hold spaces and parentheses itself, so fields are
// counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("too few fields")
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 63)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 63)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed CPU times")
	}
	return time.Duration(ut+st) * (time.Second / clockTicks), nil
}

// diedOfHeapLimit reports an exit by SIGTRAP, which is how V8's fatal
// "Reached heap limit" ends a Deno process (Deno 2.9 on Linux; V8 aborts
// with a breakpoint trap). User code cannot raise it without --allow-run.
func diedOfHeapLimit(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTRAP
}

// memoryLimit is the most anonymous memory a worker of m may hold, or 0.
func (m *Manager) memoryLimit() int64 {
	if m.cfg.MemoryLimitMB <= 0 {
		return 0
	}
	return int64(m.cfg.MemoryLimitMB+m.s.opts.MemoryOverheadMB) << 20
}

// sampling reports whether m's workers have limits to watch.
func (m *Manager) sampling() bool {
	return m.s.opts.ResourceCheckInterval > 0 &&
		(m.memoryLimit() > 0 || m.cfg.CPUTimeSoftLimit > 0 || m.cfg.CPUTimeHardLimit > 0)
}

// checkResources samples every live worker when a sample is due and
// enforces the limits.
func (m *Manager) checkResources(now time.Time) {
	if !m.sampling() || now.Before(m.nextSample) {
		return
	}
	m.nextSample = now.Add(m.s.opts.ResourceCheckInterval)
	for _, p := range append(append([]*process(nil), m.ready...), m.stopping...) {
		if p.limitKill != "" {
			continue
		}
		u, err := m.readUsage(p)
		if err != nil {
			continue // exiting: its exit is an event
		}
		m.enforce(p, u)
	}
}

// readUsage samples p (tests replace m.sample).
func (m *Manager) readUsage(p *process) (procUsage, error) {
	switch {
	case m.sample != nil:
		return m.sample(p)
	case p.fakeSignal != nil:
		return procUsage{}, errors.New("fake process")
	}
	return readUsage(p.pid)
}

// baseline records p's CPU time at ready: its limits count from there, not
// from Deno's own startup.
func (m *Manager) baseline(p *process) {
	if !m.sampling() {
		return
	}
	if u, err := m.readUsage(p); err == nil {
		p.cpuBase, p.cpuBaseSet = u.cpu, true
	}
}

// enforce applies the memory and CPU limits to one sample of p.
func (m *Manager) enforce(p *process, u procUsage) {
	if !p.cpuBaseSet {
		p.cpuBase, p.cpuBaseSet = u.cpu, true
	}
	cpu := u.cpu - p.cpuBase
	if lim := m.memoryLimit(); lim > 0 && u.anon > lim {
		m.killForLimit(p, ReasonMemory, fmt.Sprintf("memory %d MiB above its limit of %d MiB (memoryLimitMb %d + --memory-overhead-mb %d)",
			u.anon>>20, lim>>20, m.cfg.MemoryLimitMB, m.s.opts.MemoryOverheadMB))
		return
	}
	if hard := m.cfg.CPUTimeHardLimit; hard > 0 && cpu >= hard {
		m.killForLimit(p, ReasonCPU, fmt.Sprintf("CPU time %v reached its hard limit %v", cpu, hard))
		return
	}
	if soft := m.cfg.CPUTimeSoftLimit; soft > 0 && cpu >= soft && !p.stopping {
		m.log.Info().Int("pid", p.pid).Uint64("worker", p.id).Dur("cpu_ms", cpu).Dur("limit_ms", soft).Msg("worker reached its CPU time soft limit; retiring it")
		m.stopProcess(p, ReasonCPU, false)
	}
}

// killForLimit ends p at once for a resource limit: its in-flight requests
// get 546 WORKER_LIMIT (MarkGone with the limit flag, in onExited).
func (m *Manager) killForLimit(p *process, reason, why string) {
	p.limitKill = reason
	m.log.Warn().Int("pid", p.pid).Uint64("worker", p.id).Str("reason", reason).Msg("killing worker: " + why)
	if p.stopping {
		p.stopReason = reason
	}
	p.kill()
}
