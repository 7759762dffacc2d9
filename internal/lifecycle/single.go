package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"edgeway.dev/edgeway/internal/bootstrap"
	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/secure"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/rs/zerolog"
)

// A single worker is one Deno process started outside any Supervisor, for
// the public worker package: the same bootstrap, command line (permission
// grants, dependency flags, heap limit), control handshake, output
// handling and upstream client as a function's workers, without a pool
// manager, a sandbox or restarts. Its caller decides when it stops.

// SingleOptions is what StartSingle runs.
type SingleOptions struct {
	Deno   string // Deno executable
	RunDir string // private folder (0700) for the bootstrap, sockets and import map; the caller removes it
	Dir    string // working folder of the process
	// Entry is the main module: an absolute file path or a URL (file:,
	// https:, ...), given to Deno as is.
	Entry    string
	Readable []string    // what it may read besides its sockets (its folder, mapped files)
	Perms    []string    // permission flags (a resolved profile)
	Deps     config.Deps // config, import map and lock; the zero value runs with --no-config
	// Env is the process's whole environment (KEY=VALUE); the bootstrap's
	// variables are added last.
	Env           []string
	MemoryLimitMB int      // V8 heap limit; 0 = Deno's default
	DenoFlags     []string // more flags before the main module
	BootTimeout   time.Duration
	// Cancel, when closed during the boot, kills the process: the boot
	// fails. It has no effect afterwards.
	Cancel <-chan struct{}
	// OnLog receives every line (a stack trace with its frames) of the
	// process's stdout and stderr, after Mask. Called from the output
	// goroutines; nil drops the lines.
	OnLog    func(stream, line string)
	Mask     func(string) string
	MaxLine  int // longest line kept; longer ones are cut
	Upstream upstream.WorkerOptions
}

// Single is a running single worker. Its methods are safe for concurrent
// use.
type Single struct {
	p        *process
	pool     *upstream.Pool
	bgTasks  atomic.Int64
	violated atomic.Pointer[error]
	ctlMu    sync.Mutex // serialises control lines
}

// maxSocketPath is the size of sun_path on Linux, its terminating NUL
// included.
const maxSocketPath = 108

// NewSingleRunDir makes a private runtime folder (0700) for one single
// worker in the temporary folder, with the owner record a gateway's
// RemoveStaleRunDirs goes by, so the folder of a program killed with
// SIGKILL does not stay forever.
func NewSingleRunDir() (string, error) {
	dir, err := os.MkdirTemp("", runDirPrefix+"worker-*")
	if err != nil {
		return "", fmt.Errorf("runtime folder: %w", err)
	}
	if err := writeOwner(dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

var (
	singleSpawnerOnce sync.Once
	singleSpawner     *spawner
)

// spawnerForSingles is the locked thread single workers are forked from
// (see spawner): it lives as long as the program, so PR_SET_PDEATHSIG
// kills a worker only when the program itself dies.
func spawnerForSingles() *spawner {
	singleSpawnerOnce.Do(func() { singleSpawner = newSpawner(zerolog.Nop()) })
	return singleSpawner
}

// singleArgs is denoArgs for a single worker: its entry may be a URL.
func singleArgs(o *SingleOptions, bootstrapPath, importMapPath, sock, ctl string) []string {
	args := append([]string{"run"}, DependencyFlags(o.Deps, importMapPath)...)
	args = append(args, workerGrants(secure.DenoPermissionFlags(o.Perms, o.Readable, []string{sock, ctl}))...)
	if o.MemoryLimitMB > 0 {
		args = append(args, "--v8-flags=--max-old-space-size="+strconv.Itoa(o.MemoryLimitMB))
	}
	args = append(args, o.DenoFlags...)
	return append(args, "--preload", bootstrapPath, o.Entry)
}

// StartSingle starts one worker and waits until it serves, fails to boot
// (an error with the tail of its stderr) or the boot timeout passes.
func StartSingle(o SingleOptions) (*Single, error) {
	bootstrapPath := filepath.Join(o.RunDir, "bootstrap.js")
	if err := os.WriteFile(bootstrapPath, bootstrap.Script, 0o600); err != nil {
		return nil, fmt.Errorf("write bootstrap: %w", err)
	}
	m, err := json.Marshal(importMap{Imports: o.Deps.Imports, Scopes: o.Deps.Scopes})
	if err != nil {
		return nil, fmt.Errorf("import map: %w", err)
	}
	importMapPath, err := writeImportMap(o.RunDir, m)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(o.RunDir, "w.sock")
	ctlPath := filepath.Join(o.RunDir, "c.sock")
	if len(sock) >= maxSocketPath {
		return nil, fmt.Errorf("socket path %s is longer than Unix sockets allow (%d bytes): set TMPDIR to a shorter folder", sock, maxSocketPath-1)
	}
	o.Readable = append(slices.Clone(o.Readable), mappedReadPaths(o.Deps, o.Readable)...)
	ln, err := net.Listen("unix", ctlPath)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	defer ul.Close()

	p := &process{id: 1, sock: sock, exited: make(chan struct{})}
	cmd := exec.Command(o.Deno, singleArgs(&o, bootstrapPath, importMapPath, sock, ctlPath)...)
	cmd.Dir = o.Dir
	cmd.Env = workerEnv(slices.Concat(o.Env, workerRuntimeEnv), sock, ctlPath, false)
	cmd.WaitDelay = time.Second
	p.stdout = &lineWriter{log: lineLogger(o.OnLog, "stdout"), level: zerolog.InfoLevel, maxLine: o.MaxLine, mask: o.Mask}
	p.stderr = &lineWriter{log: lineLogger(o.OnLog, "stderr"), level: zerolog.WarnLevel, maxLine: o.MaxLine, mask: o.Mask}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := spawnerForSingles().start(cmd); err != nil {
		return nil, fmt.Errorf("start deno: %w", err)
	}
	p.cmd, p.pid, p.started = cmd, cmd.Process.Pid, time.Now()
	go func() {
		defer close(p.exited)
		p.exitErr = cmd.Wait()
		observe.Guard(zerolog.Nop(), observe.PanicProcess, func() {
			p.stdout.Flush()
			p.stderr.Flush()
		})
	}()
	bootDone := make(chan struct{})
	defer close(bootDone)
	if o.Cancel != nil {
		go func() {
			select {
			case <-o.Cancel:
				p.kill()
			case <-bootDone:
			}
		}()
	}
	deadline := p.started.Add(o.BootTimeout)
	if err := p.handshake(ul, deadline); err != nil {
		reason := p.bootFailure(err, deadline)
		return nil, &errBoot{reason: reason, tail: p.stderr.Tail()}
	}
	s := &Single{p: p, pool: upstream.NewPool(upstream.PoolOptions{MaxWorkers: 1})}
	p.worker = upstream.NewWorker(s.pool, 1, p.pid, sock, o.Upstream)
	s.pool.Publish(upstream.Snapshot{Workers: []*upstream.Worker{p.worker}, Total: 1})
	goGuarded(zerolog.Nop(), observe.PanicLifecycle, s.watch, p.kill)
	return s, nil
}

// watch reads the control channel (background task counts, pongs) and, once
// the process has exited, takes the worker out of the pool. A worker that
// breaks the control protocol is killed, as the gateway kills one.
func (s *Single) watch() {
	p := s.p
	go func() {
		<-p.exited
		p.worker.MarkGone(diedOfHeapLimit(p.exitErr))
		s.pool.Publish(upstream.Snapshot{Closed: true})
		p.ctl.Close()
	}()
	for {
		msg, err := readControl(p.ctlr)
		switch {
		case errors.Is(err, errControlTooLong) || errors.Is(err, errControlUnknown):
			s.violation(err)
			return
		case err != nil:
			return
		case msg.kind == ctlReady:
			s.violation(errors.New(`a second "ready"`))
			return
		}
		s.bgTasks.Store(int64(msg.n))
	}
}

func (s *Single) violation(err error) {
	err = fmt.Errorf("the worker broke the control protocol: %w", err)
	s.violated.Store(&err)
	s.p.kill()
}

// Worker is the worker as the upstream client sees it.
func (s *Single) Worker() *upstream.Worker { return s.p.worker }

// Pool is the one-worker pool requests acquire a slot from; it is closed
// once the process has exited.
func (s *Single) Pool() *upstream.Pool { return s.pool }

// PID is the process id.
func (s *Single) PID() int { return s.p.pid }

// Started is when the process was spawned.
func (s *Single) Started() time.Time { return s.p.started }

// Exited is closed once the process has exited and been reaped.
func (s *Single) Exited() <-chan struct{} { return s.p.exited }

// ExitReason says why the process ended (exit status or signal, a heap
// limit, a protocol violation); valid once Exited is closed.
func (s *Single) ExitReason() string {
	if v := s.violated.Load(); v != nil {
		return (*v).Error()
	}
	if diedOfHeapLimit(s.p.exitErr) {
		return "it reached its memory limit (" + exitString(s.p.exitErr) + ")"
	}
	return exitString(s.p.exitErr)
}

// DiedOfMemoryLimit reports an exit caused by V8's heap limit.
func (s *Single) DiedOfMemoryLimit() bool { return diedOfHeapLimit(s.p.exitErr) }

// BackgroundTasks is the number of EdgeRuntime.waitUntil tasks pending, as
// the worker last reported.
func (s *Single) BackgroundTasks() int { return int(s.bgTasks.Load()) }

// Send writes one control line ("beforeunload <reason>", "drain").
func (s *Single) Send(line string) {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	s.p.send(line, time.Now().Add(controlWriteTimeout))
}

// Terminate asks the worker to finish what it holds (requests, background
// tasks) and exit: "terminate" on the control channel, SIGTERM if that fails.
func (s *Single) Terminate() {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	s.p.terminate()
}

// Kill ends the process at once (SIGKILL).
func (s *Single) Kill() { s.p.kill() }

// Memory is the process's anonymous resident memory in bytes, from
// /proc/<pid>/statm (0 once it has exited or where /proc is missing).
func (s *Single) Memory() int64 {
	u, err := readUsage(s.p.pid)
	if err != nil {
		return 0
	}
	return u.anon
}

// SingleEnv is a single worker's environment: vars (which may not set
// what edgeway sets for every worker: EDGEWAY_*, DENO_SERVE_ADDRESS,
// DENO_AUTO_SERVE) over the variables of the host's environment that
// steer Deno itself (DENO_DIR, NPM_CONFIG_REGISTRY, ...: see
// gatewayOnlyVars), with DENO_DIR resolved as Deno resolves it when unset,
// so the worker uses the host's module cache without seeing its HOME.
func SingleEnv(vars map[string]string, host []string) ([]string, error) {
	hostVar := func(name string) string {
		for _, kv := range host {
			if k, v, ok := strings.Cut(kv, "="); ok && k == name {
				return v
			}
		}
		return ""
	}
	env := map[string]string{}
	for _, name := range gatewayOnlyVars {
		if v := hostVar(name); v != "" {
			env[name] = v
		}
	}
	if env["DENO_DIR"] == "" {
		cache := hostVar("XDG_CACHE_HOME")
		if cache == "" && hostVar("HOME") != "" {
			cache = filepath.Join(hostVar("HOME"), ".cache")
		}
		if cache != "" {
			env["DENO_DIR"] = filepath.Join(cache, "deno")
		}
	}
	for k, v := range vars {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00"):
			return nil, fmt.Errorf("environment variable %q: a name must be non-empty without '=' or NUL, and a value without NUL", k)
		case strings.HasPrefix(k, "EDGEWAY_") || contains(workerOwnedVars, k):
			return nil, fmt.Errorf("environment variable %s is set by edgeway for every worker", k)
		}
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out, nil
}

// lineLogger is a logger whose events reach onLog as (stream, message):
// the lines a lineWriter gathers, without the JSON around them.
func lineLogger(onLog func(stream, line string), stream string) zerolog.Logger {
	if onLog == nil {
		return zerolog.Nop()
	}
	return zerolog.New(lineSink{stream: stream, onLog: onLog})
}

// lineSink decodes one zerolog event and hands its message on.
type lineSink struct {
	stream string
	onLog  func(stream, line string)
}

func (l lineSink) Write(p []byte) (n int, err error) {
	// A panicking handler loses its line, never the output goroutine
	// (os/exec's copier recovers nothing).
	defer func() { recover() }()
	n = len(p)
	var ev struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(p, &ev) == nil {
		l.onLog(l.stream, ev.Message)
	}
	return n, nil
}
