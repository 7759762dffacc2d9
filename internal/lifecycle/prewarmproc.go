package lifecycle

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/secure"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/rs/zerolog"
)

// pooledProc is a pre-booted worker: `deno run <bootstrap>` with its
// class's flags, its sockets and an empty environment (bootEnv only),
// waiting on its control channel for the one function it will serve.
//
// Its read grant names its slot, a path that does not exist at boot; the
// assignment makes the slot a folder of symbolic links, one to the
// function's folder and one to each shared folder, named as in the
// functions root (Deno checks grants on the path as written, so the
// function reads its folder and the shared ones through the slot, and
// nothing else of the root). With a private /tmp the slot lies in the
// worker's own /tmp (/tmp/fn, already granted), else in the runtime folder
// (slot-<id>).
type pooledProc struct {
	p          *process
	class      *poolClass
	slotHost   string // where the gateway makes the slot
	slotInside string // the slot as the worker names it
	out, err   *switchWriter
	boxEnv     []string // TMPDIR, as a fresh worker of the function has it
	token      string   // its console tag token (consoletag.go), fixed at boot
	// handed is closed when the pool hands it to a function: its budget
	// slot is then given back (holdSlot).
	handed chan struct{}
}

// switchWriter forwards a worker's output to the lineWriter of whoever
// owns it now: the pool's, then its function's.
type switchWriter struct {
	mu  sync.Mutex
	cur *lineWriter
}

func (w *switchWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur.Write(b)
}

// swap flushes what the old writer holds and makes lw the current one.
func (w *switchWriter) swap(lw *lineWriter) {
	w.mu.Lock()
	w.cur.Flush()
	w.cur = lw
	w.mu.Unlock()
}

func (w *switchWriter) flush() {
	w.mu.Lock()
	w.cur.Flush()
	w.mu.Unlock()
}

func (w *switchWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur.Tail()
}

// bootPooled starts a pre-booted worker of class c and waits until it says
// "pooled" (or fails, or the boot timeout passes).
func bootPooled(s *Supervisor, c *poolClass, id uint64, log zerolog.Logger) (*pooledProc, error) {
	importMapPath, err := writeImportMap(s.runDir, c.importMap)
	if err != nil {
		return nil, fmt.Errorf("prewarm: %w", err)
	}
	sock := filepath.Join(s.runDir, "w"+strconv.FormatUint(id, 10)+".sock")
	ctlPath := filepath.Join(s.runDir, "c"+strconv.FormatUint(id, 10)+".sock")
	ln, err := net.Listen("unix", ctlPath)
	if err != nil {
		return nil, fmt.Errorf("prewarm: control socket: %w", err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	defer ul.Close()

	spec := &launchSpec{fn: &config.Function{Name: "(prewarm)"}, readable: c.shared, perms: c.perms, compat: c.compat}
	w, err := s.workerExtras(spec, id, s.bootstrapPath, importMapPath, ctlPath)
	if err != nil {
		return nil, fmt.Errorf("prewarm: %w", err)
	}
	pp := &pooledProc{class: c, slotInside: filepath.Join(s.runDir, "slot-"+strconv.FormatUint(id, 10)), boxEnv: w.env(), token: consoleToken()}
	if w.box != nil && w.box.private {
		pp.slotInside = tmpRoot + "/fn"
	}
	pp.slotHost = w.box.hostPath(pp.slotInside)
	p := &process{id: id, sock: w.box.hostPath(sock), exited: make(chan struct{})}
	pp.p = p

	args := append([]string{"run"}, DependencyFlags(config.Deps{}, importMapPath)...)
	readable := append([]string{pp.slotInside}, c.shared...)
	args = append(args, workerGrants(secure.DenoPermissionFlags(slices.Concat(c.perms, w.perms()), readable, []string{sock, ctlPath}))...)
	if pp.slotHost != pp.slotInside {
		// The private /tmp is writable and the slot lies in it: its links
		// would let the function write into its own and the shared
		// folders. A denial more specific than the grant wins in Deno 2.9
		// (through the links, after "..", relative to a working folder
		// changed into the slot: all refused), and TestPrewarmIsolation
		// checks it.
		args = append(args, "--deny-write="+pp.slotInside)
	}
	if c.memoryMB > 0 {
		args = append(args, "--v8-flags=--max-old-space-size="+strconv.Itoa(c.memoryMB))
	}
	args = append(args, s.opts.DenoFlags...)
	args = append(args, s.bootstrapPath)
	cmd := exec.Command(s.opts.Deno, args...)
	cmd.Dir = "/" // the function's folder is not known yet; the bootstrap changes to its slot
	cmd.Env = slices.Concat(c.bootEnv, []string{
		envControl + "=" + ctlPath,
		envServeAddress + "=unix:" + sock,
		envPool + "=1",
		consoleEnv(pp.token, s.opts.WorkerRequestContext),
	}, w.env())
	if c.node {
		cmd.Env = append(cmd.Env, envNodeServer+"=1")
	}
	w.box.wrap(cmd, s.sandbox)
	cmd.WaitDelay = s.opts.ShutdownGrace
	wlog := log.With().Uint64("worker", id).Logger()
	bootOut, bootErr := s.outputWriters(wlog, pp.token, "", functionEnv{})
	pp.out, pp.err = &switchWriter{cur: bootOut}, &switchWriter{cur: bootErr}
	cmd.Stdout, cmd.Stderr = pp.out, pp.err
	if err := s.spawner.start(cmd); err != nil {
		w.release()
		return nil, fmt.Errorf("prewarm: %w", err)
	}
	p.cmd = cmd
	p.pid = cmd.Process.Pid
	p.started = time.Now()
	pp.out.cur.setPID(p.pid)
	pp.err.cur.setPID(p.pid)
	go func() {
		defer close(p.exited)
		p.exitErr = cmd.Wait()
		observe.Guard(log, observe.PanicProcess, func() {
			w.release()
			if pp.slotHost == pp.slotInside {
				os.RemoveAll(pp.slotHost) // in the runtime folder; a private /tmp goes with its folder
			}
			pp.out.flush()
			pp.err.flush()
		})
	}()

	deadline := p.started.Add(s.opts.BootTimeout)
	err = p.acceptControl(ul, deadline)
	if err == nil {
		p.ctl.SetReadDeadline(deadline)
		var msg controlMsg
		msg, err = readControl(p.ctlr)
		if err == nil && msg.kind != ctlPooled {
			err = fmt.Errorf("control connection: %q before \"pooled\"", msg.kind)
		}
		p.ctl.SetReadDeadline(time.Time{})
	}
	if err != nil {
		p.kill()
		<-p.exited
		return nil, &errBoot{reason: "pre-booted worker: " + err.Error(), tail: pp.err.tail()}
	}
	return pp, nil
}

// assignment is the JSON a pre-booted worker gets after "assign <n>".
type assignment struct {
	Entry string            `json:"entry"` // file URL of the entry, through the slot
	Dir   string            `json:"dir"`   // the slot: its working folder
	Env   map[string]string `json:"env"`
	Node  bool              `json:"node"` // it may start a node:http server
}

// assign makes pp worker id of spec's function: points its slot at the
// function's folder, hands it the entry and environment, and waits for
// "ready" as a fresh worker's boot would. On failure the process is gone.
func (pp *pooledProc) assign(s *Supervisor, spec *launchSpec, pool *upstream.Pool, id uint64, log zerolog.Logger) (*process, error) {
	p := pp.p
	fail := func(err error) (*process, error) {
		p.kill()
		<-p.exited
		return nil, err
	}
	if err := makeSlot(pp.slotHost, spec.pool.links, spec.pool.dir, spec.fn.Dir); err != nil {
		return fail(fmt.Errorf("prewarm: slot: %w", err))
	}
	wlog := log.With().Uint64("worker", id).Logger()
	stdout, stderr := s.outputWriters(wlog, pp.token, spec.fn.Name, spec.env)
	stdout.setPID(p.pid)
	stderr.setPID(p.pid)
	pp.out.swap(stdout)
	pp.err.swap(stderr)

	a := assignment{
		Entry: config.FileURL(filepath.Join(pp.slotInside, spec.pool.dir, spec.pool.entry)).String(),
		Dir:   filepath.Join(pp.slotInside, spec.pool.dir),
		Env:   make(map[string]string, len(spec.env.vars)+len(pp.boxEnv)),
		Node:  spec.nodeServer,
	}
	for _, kv := range slices.Concat(spec.env.vars, pp.boxEnv) {
		k, v, _ := strings.Cut(kv, "=")
		a.Env[k] = v
	}
	body, err := json.Marshal(a)
	if err != nil {
		return fail(fmt.Errorf("prewarm: assignment: %w", err))
	}
	p.id, p.started = id, time.Now()
	deadline := p.started.Add(s.opts.BootTimeout)
	p.ctl.SetWriteDeadline(deadline)
	if _, err := p.ctl.Write(append([]byte("assign "+strconv.Itoa(len(body))+"\n"), body...)); err != nil {
		return fail(&errBoot{reason: "pre-booted worker: sending its function: " + err.Error(), tail: pp.err.tail()})
	}
	p.ctl.SetWriteDeadline(time.Time{})
	if err := p.awaitReady(deadline); err != nil {
		reason := p.bootFailure(err, deadline)
		return nil, &errBoot{reason: reason, tail: pp.err.tail()}
	}
	// What the Manager and the exit path read: the function's writers.
	p.stdout, p.stderr = stdout, stderr
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

// makeSlot creates the slot folder and its links.
// makeSlot creates the slot: links to the shared folders and the
// function's folder fnDir as a real folder dir of links to its entries
// (see poolFit.dir). The entries are read now: a file added to the top of
// the folder later is not seen by this worker (a change reloads the
// function anyway when the folder is watched).
func makeSlot(slot string, links map[string]string, dir, fnDir string) error {
	if err := os.Mkdir(slot, 0o755); err != nil {
		return err
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(slot, name)); err != nil {
			return err
		}
	}
	own := filepath.Join(slot, dir)
	if err := os.Mkdir(own, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(fnDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(fnDir, e.Name()), filepath.Join(own, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
