package lifecycle

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/secure"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/rs/zerolog"
)

// launchSpec is everything a function's workers are started with. A reload
// builds a new one and a new Manager; a running Manager's spec never
// changes.
type launchSpec struct {
	fn        *config.Function
	readable  []string // its folder, the `_*` folders and what its import map points to
	perms     []string // permission flags of its profile
	env       functionEnv
	importMap []byte // ImportMapJSON, written to the runtime folder at spawn
	compat    bool   // the default profile: /tmp, npm cache, sys (sandbox.go)
	// nodeServer: it may start a node:http server (nodeserver.go)
	nodeServer bool
	pool       poolFit // its prewarm class, or why it boots fresh (prewarmclass.go)
}

// process is one Deno worker process. Its fields are written by the
// goroutine that starts it and then only read; the Manager owns its fate.
type process struct {
	id      uint64
	cmd     *exec.Cmd
	pid     int
	sock    string
	worker  *upstream.Worker
	ctl     net.Conn
	ctlr    *bufio.Reader
	started time.Time

	exited chan struct{} // closed once the process has been reaped
	// answered, for a worker taken from the prewarm pool, is closed when
	// the request that waited for its cold start is answered.
	answered chan struct{}
	exitErr  error
	stderr   *lineWriter
	stdout   *lineWriter

	// Owned by the Manager goroutine.
	bgTasks       int
	stopping      bool
	stopReason    string
	drained       bool
	terminated    bool
	healthFails   int
	pingSent      uint64    // ids of pings sent so far (health, idle and wedge probes)
	healthPing    uint64    // id of the outstanding health or idle ping
	pingAt        time.Time // when the outstanding ping was sent; zero if none
	probePing     uint64    // id of the outstanding wedge probe
	probeAt       time.Time // when the wedge probe was sent; zero if none
	lastPing      time.Time
	idleConfirmed int64     // worker.LastActive (nanos) a pong confirmed as idle with no tasks
	recycleAfter  time.Time // earliest retry after a failed replacement boot
	limitKill     string    // the resource limit it was killed for (ReasonMemory, ReasonCPU)
	cpuBase       time.Duration
	cpuBaseSet    bool // cpuBase holds its CPU time when first sampled, after boot

	// fakeSignal, when set, receives SIGTERM/SIGKILL instead of cmd: tests
	// run fake processes that have no cmd.
	fakeSignal func(syscall.Signal)
}

// errBoot carries the reason a worker failed to become ready.
type errBoot struct {
	reason   string
	tail     string // the worker's last stderr events, already logged as they came
	headline string // of Deno's last "error: ..." among them, or ""
}

func (e *errBoot) Error() string {
	if e.tail == "" {
		return e.reason
	}
	return e.reason + "\n" + e.tail
}

// denoArgs builds the worker's command line: the function's config, import
// map and lock, permissions from its profile, reads scoped to spec.readable
// and its sockets, the V8 heap limit, the worker's sandbox and inspector
// flags and any --deno-flag, then the bootstrap as a preload and the
// function's entry as the main module (no arguments: the sockets travel in
// the environment, see workerEnv). Deno reads the config, map and lock
// itself at startup, before permissions apply, so the worker is granted no
// access to them.
func denoArgs(s *Supervisor, spec *launchSpec, importMapPath, sock, ctl string, w workerExtras) []string {
	fn := spec.fn
	args := append([]string{"run"}, DependencyFlags(fn.Deps, importMapPath)...)
	args = append(args, workerGrants(secure.DenoPermissionFlags(slices.Concat(spec.perms, w.perms()), spec.readable, []string{sock, ctl}))...)
	args = append(args, w.inspectFlags()...)
	if fn.Config.MemoryLimitMB > 0 {
		args = append(args, "--v8-flags=--max-old-space-size="+strconv.Itoa(fn.Config.MemoryLimitMB))
	}
	args = append(args, s.opts.DenoFlags...)
	return append(args, "--preload", s.bootstrapPath, config.FileURL(fn.Entrypoint).String())
}

// startProcess spawns a worker for fn and waits until it serves or fails.
// It runs outside the Manager goroutine and only reports back.
func startProcess(s *Supervisor, spec *launchSpec, pool *upstream.Pool, id uint64, log zerolog.Logger) (*process, error) {
	fn := spec.fn
	importMapPath, err := writeImportMap(s.runDir, spec.importMap)
	if err != nil {
		return nil, fmt.Errorf("spawn %s: %w", fn.Name, err)
	}
	sock := filepath.Join(s.runDir, "w"+strconv.FormatUint(id, 10)+".sock")
	ctlPath := filepath.Join(s.runDir, "c"+strconv.FormatUint(id, 10)+".sock")
	ln, err := net.Listen("unix", ctlPath)
	if err != nil {
		return nil, fmt.Errorf("spawn %s: control socket: %w", fn.Name, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	defer ul.Close()

	w, err := s.workerExtras(spec, id, s.bootstrapPath, importMapPath, ctlPath)
	if err != nil {
		return nil, fmt.Errorf("spawn %s: %w", fn.Name, err)
	}
	// sock is the path the worker binds (inside its box); p.sock is where
	// the gateway sees it.
	p := &process{id: id, sock: w.box.hostPath(sock), exited: make(chan struct{})}
	cmd := exec.Command(s.opts.Deno, denoArgs(s, spec, importMapPath, sock, ctlPath, w)...)
	cmd.Dir = fn.Dir
	fe := spec.env
	token := consoleToken()
	cmd.Env = slices.Concat(workerEnv(fe.vars, sock, ctlPath, spec.nodeServer), w.env(), []string{consoleEnv(token, s.opts.WorkerRequestContext)})
	w.box.wrap(cmd, s.sandbox)
	cmd.WaitDelay = s.opts.ShutdownGrace
	wlog := log.With().Uint64("worker", id).Logger()
	p.stdout, p.stderr = s.outputWriters(wlog, token, fn.Name, fe)
	cmd.Stdout = p.stdout
	cmd.Stderr = p.stderr
	if err := s.spawner.start(cmd); err != nil {
		w.release()
		return nil, fmt.Errorf("spawn %s: %w", fn.Name, err)
	}
	w.logInspector(log, id)
	p.cmd = cmd
	p.pid = cmd.Process.Pid
	p.started = time.Now()
	p.stdout.setPID(p.pid)
	p.stderr.setPID(p.pid)
	go func() {
		// exited is closed whatever happens: the manager waits for it.
		defer close(p.exited)
		p.exitErr = cmd.Wait()
		observe.Guard(log, observe.PanicProcess, func() {
			w.release()
			p.stdout.Flush()
			p.stderr.Flush()
		})
	}()

	deadline := p.started.Add(s.opts.BootTimeout)
	if err := p.handshake(ul, deadline); err != nil {
		reason := p.bootFailure(err, deadline)
		return nil, &errBoot{reason: reason, tail: p.stderr.Tail(), headline: p.stderr.BootError()}
	}
	p.worker = upstream.NewWorker(pool, id, p.pid, p.sock, upstream.WorkerOptions{
		MaxIdleConns: s.opts.UpstreamMaxIdleConns,
		DialTimeout:  s.opts.UpstreamDialTimeout,
		BufferSize:   s.opts.UpstreamBufferSize,
		ExitWait:     s.opts.WorkerExitWait,
		HangupCheck:  s.opts.UpstreamHangupCheck,
		Abort:        p.abortRequest,
	})
	return p, nil
}

// handshake accepts the bootstrap's control connection and waits for
// "ready" (see awaitFirstLine), or for the process to exit, or for the
// deadline.
func (p *process) handshake(ln *net.UnixListener, deadline time.Time) error {
	if err := p.acceptControl(ln, deadline); err != nil {
		return err
	}
	return p.awaitReady(deadline)
}

// acceptControl accepts the bootstrap's one control connection.
func (p *process) acceptControl(ln *net.UnixListener, deadline time.Time) error {
	type result struct {
		c   net.Conn
		err error
	}
	ln.SetDeadline(deadline)
	accepted := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		accepted <- result{c, err}
	}()
	var r result
	select {
	case r = <-accepted:
	case <-p.exited:
		return fmt.Errorf("deno exited before the bootstrap started (%v)", p.exitErr)
	}
	if r.err != nil {
		return fmt.Errorf("bootstrap did not connect within the boot timeout: %w", r.err)
	}
	ln.Close() // removes the socket file: nobody else can connect
	p.ctl = r.c
	p.ctlr = newControlReader(p.ctl)
	return nil
}

// awaitReady waits for "ready" on the control connection.
func (p *process) awaitReady(deadline time.Time) error {
	err := p.awaitFirstLine(deadline)
	var msg controlMsg
	if err == nil {
		p.ctl.SetReadDeadline(deadline)
		msg, err = readControl(p.ctlr)
	}
	if err != nil {
		if errors.Is(err, errControlTooLong) || errors.Is(err, errControlUnknown) {
			return fmt.Errorf("control connection: %w", err)
		}
		select {
		case <-p.exited:
			return fmt.Errorf("worker exited during boot (%v)", p.exitErr)
		default:
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return errors.New("no HTTP server (Deno.serve, export default { fetch }, node:http) became ready within the boot timeout")
		}
		return fmt.Errorf("control connection: %w", err)
	}
	if msg.kind != ctlReady {
		return fmt.Errorf("control connection: %q before \"ready\"", msg.kind)
	}
	p.ctl.SetReadDeadline(time.Time{})
	return nil
}

// terminate asks the worker to finish and exit: "terminate" on the control
// channel, which the bootstrap reads in order after "drain" (a SIGTERM
// could overtake it), or SIGTERM when the channel is gone.
func (p *process) terminate() {
	if p.fakeSignal != nil {
		p.fakeSignal(syscall.SIGTERM)
		return
	}
	if p.ctl != nil {
		p.ctl.SetWriteDeadline(time.Now().Add(controlWriteTimeout))
		if _, err := p.ctl.Write([]byte("terminate\n")); err == nil {
			return
		}
	}
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
}

// kill ends the worker at once (SIGKILL).
func (p *process) kill() {
	if p.fakeSignal != nil {
		p.fakeSignal(syscall.SIGKILL)
		return
	}
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
}

// send writes one control line by deadline; errors mean the worker is going
// away or stuck, which its exit or the health check notices.
func (p *process) send(line string, deadline time.Time) {
	if p.ctl != nil {
		p.ctl.SetWriteDeadline(deadline)
		p.ctl.Write([]byte(line + "\n"))
	}
}

// outputWriters are a worker's stdout and stderr log writers: console
// lines tagged with token (consoletag.go) are parsed, secrets masked, and
// the host's Log hook hears each event. name is "" for a pre-booted worker
// not yet assigned (no hook, nothing to mask).
func (s *Supervisor) outputWriters(wlog zerolog.Logger, token, name string, fe functionEnv) (stdout, stderr *lineWriter) {
	tag := string(tagStart) + token
	stdout = &lineWriter{log: wlog.With().Str("stream", "stdout").Logger(), level: zerolog.InfoLevel, maxLine: s.opts.WorkerLogLine, window: s.opts.WorkerLogCoalesce, tag: tag}
	stderr = &lineWriter{log: wlog.With().Str("stream", "stderr").Logger(), level: zerolog.WarnLevel, stderr: true, maxLine: s.opts.WorkerLogLine, window: s.opts.WorkerLogCoalesce, tag: tag}
	if fe.masker != nil {
		stdout.mask, stderr.mask = fe.masker.Mask, fe.masker.Mask
	}
	if h := s.hooks.Log; h != nil && name != "" {
		stdout.onLine = func(pid int, line string) { h(name, pid, "stdout", line) }
		stderr.onLine = func(pid int, line string) { h(name, pid, "stderr", line) }
	}
	return stdout, stderr
}

// bootFailure is why a boot that failed with err failed. Deno drops the
// control connection before it prints a fatal error, so the process is
// let exit by itself until deadline (then killed) and its own message
// reaches the log; when it did exit by itself and err is the channel
// closing, the reason says so ("the worker exited during boot (exit
// status 1)") rather than "control connection: EOF".
func (p *process) bootFailure(err error, deadline time.Time) string {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	exitedItself := false
	select {
	case <-p.exited:
		exitedItself = true
	case <-t.C:
		p.kill()
		<-p.exited
	}
	if exitedItself && !errors.Is(err, errControlTooLong) && !errors.Is(err, errControlUnknown) {
		return fmt.Sprintf("the worker exited during boot (%s)", exitString(p.exitErr))
	}
	return err.Error()
}
