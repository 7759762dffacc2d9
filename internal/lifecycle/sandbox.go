package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/secure"

	"github.com/rs/zerolog"
)

// What a function of the default permission profile may touch beyond its
// own files, as on Supabase: /tmp (read and write), its own TMPDIR, Deno's
// npm cache (read) and a few read-only facts about the machine (sys). Other
// profiles get none of it: they say exactly what they grant.
//
// A /tmp grant must never cover anything of edgeway's: its runtime folder
// holds every worker's socket and the bootstrap every worker runs, and
// DENO_DIR the code every function loads. Deno's --deny-* flags cannot
// carve those out reliably (Deno 2.9.6 lets a more specific grant win over
// a broader denial, but not when several grants sit under the denied
// folder), so no denial is relied on:
//
//   - private (the default where the OS allows it): the worker runs in a
//     mount namespace where its own folder is /tmp (see nshelper.go). The
//     few files of edgeway's it needs that lie under /tmp (the bootstrap,
//     its import map, its control socket, its function's folders, Deno)
//     are bound back read-only, one by one; its HTTP socket is created in
//     its own folder. Nothing else of the host's /tmp is there.
//   - shared: the host's /tmp, only when nothing of edgeway's lies under it
//     (start edgeway with TMPDIR elsewhere, e.g. /run/edgeway). Workers see
//     each other's files, and any symbolic link someone planted in /tmp:
//     Deno checks paths as written, so /tmp/link/x is readable whenever
//     /tmp/link points to something the gateway's user may read.
//   - off: no /tmp, only the worker's TMPDIR.
//
// DENO_DIR under /tmp rules out private and shared alike: the worker
// could rewrite cached modules of every function.

const tmpRoot = "/tmp"

// sandbox is resolved once at startup.
type sandbox struct {
	tmp      string   // config.TmpPrivate, TmpShared or TmpOff after auto
	npmCache string   // "" when not granted
	sys      []string // --allow-sys names
	setup    string   // private: config.TmpSetupThread or TmpSetupExec
	spawner  *spawner // thread setup: the spawner whose thread sets up each namespace
	self     string   // exec setup: this executable, for the namespace helper
	mountNS  string   // exec setup: the gateway's mount namespace, for the helper
	deno     string   // Deno's executable, bound back when under /tmp
}

// denoDirs asks Deno where its cache is (DENO_DIR and its npm folder), as
// workers will see it; on failure it falls back to Deno's rule on Linux.
func denoDirs(deno string) (denoDir, npmCache string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, deno, "info", "--json").Output()
	var info struct {
		DenoDir  string `json:"denoDir"`
		NpmCache string `json:"npmCache"`
	}
	if err == nil && json.Unmarshal(bytes.TrimSpace(out), &info) == nil && info.DenoDir != "" {
		return info.DenoDir, info.NpmCache
	}
	denoDir = os.Getenv("DENO_DIR")
	if denoDir == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		denoDir = filepath.Join(cache, "deno")
	}
	return denoDir, filepath.Join(denoDir, "npm")
}

// newSandbox resolves --function-tmp (probing the namespace for auto) and
// --function-tmp-setup (sp is the spawner the thread setup would use),
// --function-npm-read and --function-sys. Options with no --function-tmp
// at all (unit tests) give nil: workers get nothing extra.
func newSandbox(opts config.Options, layout *config.Layout, runDir string, sp *spawner, log zerolog.Logger) (*sandbox, error) {
	if opts.FunctionTmp == "" {
		return nil, nil
	}
	sb := &sandbox{tmp: opts.FunctionTmp, sys: opts.FunctionSys, deno: opts.Deno}
	denoDir, npmCache := denoDirs(opts.Deno)
	if opts.FunctionNpmRead && secure.CheckPermissionPath(npmCache) == nil {
		sb.npmCache = npmCache
	}
	if sb.tmp == config.TmpOff {
		return sb, nil
	}
	// refuse turns an explicit mode that cannot be had safely into an
	// error, and auto into off.
	refuse := func(err error) (*sandbox, error) {
		if opts.FunctionTmp != config.TmpAuto {
			return nil, fmt.Errorf("flag --function-tmp=%s: %w", opts.FunctionTmp, err)
		}
		log.Warn().Err(err).Msg("functions get no /tmp, only their own TMPDIR (--function-tmp=off)")
		sb.tmp, sb.setup = config.TmpOff, ""
		return sb, nil
	}
	if underTmp(denoDir) {
		return refuse(fmt.Errorf("DENO_DIR %s lies under /tmp, where functions could rewrite every function's cached modules; set DENO_DIR elsewhere", denoDir))
	}
	if sb.tmp == config.TmpShared {
		if err := sharedTmpSafe(opts, layout, runDir); err != nil {
			return refuse(err)
		}
		return sb, nil
	}
	err := sb.choosePrivateSetup(opts.FunctionTmpSetup, runDir, sp, log)
	var refused errThreadSetup
	if errors.As(err, &refused) {
		return nil, err // asked for explicitly: no fallback to another /tmp
	}
	switch {
	case err == nil:
		sb.tmp = config.TmpPrivate
	case opts.FunctionTmp == config.TmpPrivate:
		return nil, fmt.Errorf("flag --function-tmp=private: this system does not let edgeway give workers a private /tmp: %w", err)
	default:
		if serr := sharedTmpSafe(opts, layout, runDir); serr != nil {
			return refuse(fmt.Errorf("no private /tmp per worker on this system (%v), and the host's /tmp is unsafe to share: %w", err, serr))
		}
		log.Warn().Err(err).Msg("no private /tmp per worker on this system (mount namespaces refused): functions share the host's /tmp and see each other's files (--function-tmp=shared; --function-tmp=off to refuse them /tmp)")
		sb.tmp, sb.setup = config.TmpShared, ""
	}
	return sb, nil
}

// sharedTmpSafe checks that nothing of edgeway's lies under the host's
// /tmp, which shared mode grants to every function.
func sharedTmpSafe(opts config.Options, layout *config.Layout, runDir string) error {
	for _, p := range append([]string{runDir, filepath.Dir(layout.Root), opts.Deno}, opts.EnvFiles...) {
		if abs, err := filepath.Abs(p); err == nil && underTmp(abs) {
			return fmt.Errorf("%s lies under /tmp, which every function could then read and write (start edgeway with TMPDIR and the functions folder outside /tmp)", abs)
		}
	}
	return nil
}

// errThreadSetup is --function-tmp-setup=thread refused.
type errThreadSetup struct{ error }

// choosePrivateSetup picks how workers enter their private /tmp and checks
// that it works here: the spawner's thread (root; --function-tmp-setup
// auto or thread), else the re-executed namespace helper.
func (sb *sandbox) choosePrivateSetup(mode, runDir string, sp *spawner, log zerolog.Logger) error {
	if mode != config.TmpSetupExec {
		err := errors.New("the gateway is not root (a multithreaded process cannot enter a user namespace)")
		if os.Geteuid() == 0 && sp != nil {
			err = probeThread(runDir, sp)
		}
		if err == nil {
			sb.setup, sb.spawner = config.TmpSetupThread, sp
			return nil
		}
		if mode == config.TmpSetupThread {
			return errThreadSetup{fmt.Errorf("flag --function-tmp-setup=thread: %w", err)}
		}
		if os.Geteuid() == 0 {
			log.Warn().Err(err).Msg("private /tmp: the spawner's thread cannot set up mount namespaces; each worker re-executes edgeway as a namespace helper instead (--function-tmp-setup=exec)")
		}
	}
	self, err := os.Executable()
	if err == nil && strings.HasSuffix(self, ".test") {
		// A Go test binary would run its tests again, not the helper.
		err = errors.New("not the edgeway executable")
	}
	if err != nil {
		return err
	}
	sb.setup, sb.self, sb.mountNS = config.TmpSetupExec, self, gatewayMountNS()
	return sb.probe(runDir)
}

// probeThread sets up a private /tmp on sp's thread once, starting
// nothing, and checks that the thread came back.
func probeThread(runDir string, sp *spawner) error {
	dir, err := os.MkdirTemp(runDir, "tmp-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var binds []string
	if underTmp(runDir) {
		binds = []string{runDir}
	}
	return sp.probeTmp(&privateTmp{dir: dir, binds: binds})
}

// probe runs the namespace helper once without a command.
func (sb *sandbox) probe(runDir string) error {
	dir, err := os.MkdirTemp(runDir, "tmp-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sb.self, NamespaceHelperCommand, gatewayMountNS(), dir, "0", "--")
	cmd.SysProcAttr = namespaceAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// underTmp reports whether p is /tmp or lies under it, lexically or once
// symbolic links are resolved.
func underTmp(p string) bool {
	if p == "" {
		return false
	}
	in := func(p string) bool { return p == tmpRoot || strings.HasPrefix(p, tmpRoot+"/") }
	if in(filepath.Clean(p)) {
		return true
	}
	real, err := filepath.EvalSymlinks(p)
	return err == nil && in(real)
}

// workerBox is one worker's share of the sandbox.
type workerBox struct {
	tmpDir  string   // its own folder, removed once it has exited
	perms   []string // permission flags added to its profile's
	env     []string // TMPDIR
	private bool     // started through the namespace helper
	binds   []string // bound back read-only under its private /tmp
}

// compatProfile reports whether a function's permissions are the default
// profile, which gets what Supabase's functions get.
func compatProfile(perms []string) bool {
	return len(perms) == 0 || (len(perms) == 1 && perms[0] == secure.DefaultProfile)
}

// box prepares worker id's folder and flags; nil when its profile gets
// none of it. needs are the files Deno itself opens (the bootstrap, the
// import map, the control socket) for the private mode's binds.
func (sb *sandbox) box(spec *launchSpec, runDir string, id uint64, needs ...string) (*workerBox, error) {
	if sb == nil || !spec.compat {
		return nil, nil
	}
	dir := filepath.Join(runDir, "tmp-w"+strconv.FormatUint(id, 10))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("worker temporary folder: %w", err)
	}
	b := &workerBox{tmpDir: dir}
	var read, write []string
	switch sb.tmp {
	case config.TmpPrivate:
		read, write = append(read, tmpRoot), append(write, tmpRoot)
		b.env = []string{"TMPDIR=" + tmpRoot}
		b.private, b.binds = true, sb.workerBinds(spec, needs)
	case config.TmpShared:
		read, write = append(read, tmpRoot, dir), append(write, tmpRoot, dir)
		b.env = []string{"TMPDIR=" + dir}
	default:
		read, write = append(read, dir), append(write, dir)
		b.env = []string{"TMPDIR=" + dir}
	}
	if sb.npmCache != "" {
		read = append(read, sb.npmCache)
	}
	b.perms = append(b.perms, "--allow-read="+strings.Join(read, ","), "--allow-write="+strings.Join(write, ","))
	if len(sb.sys) > 0 {
		b.perms = append(b.perms, "--allow-sys="+strings.Join(sb.sys, ","))
	}
	return b, nil
}

// workerBinds lists what lies under /tmp that a worker of spec must still
// reach inside its private /tmp: its function's folders and files, the
// files Deno opens, Deno itself; outermost paths only.
func (sb *sandbox) workerBinds(spec *launchSpec, needs []string) []string {
	paths := append(append(slices.Clone(spec.readable), spec.fn.Dir, sb.deno), needs...)
	paths = append(paths, spec.fn.Deps.Config, spec.fn.Deps.Lock)
	var out []string
	for _, p := range paths {
		if !underTmp(p) || filepath.Clean(p) == tmpRoot {
			continue
		}
		out = append(out, filepath.Clean(p))
	}
	slices.Sort(out)
	kept := out[:0]
	for _, p := range out {
		if len(kept) > 0 && (p == kept[len(kept)-1] || strings.HasPrefix(p, kept[len(kept)-1]+"/")) {
			continue
		}
		kept = append(kept, p)
	}
	return kept
}

// hostPath is where a path the worker creates under its private /tmp (its
// HTTP socket) is on the host.
func (b *workerBox) hostPath(p string) string {
	if b == nil || !b.private || !underTmp(p) {
		return p
	}
	return filepath.Join(b.tmpDir, strings.TrimPrefix(filepath.Clean(p), tmpRoot))
}

// wrap makes cmd start in the worker's private /tmp when it has one: set
// up by the spawner's thread (thread setup: cmd is left as it is, the
// spawner's start takes the setup), or through the namespace helper (exec
// setup: the helper is this executable, the same pid becomes Deno).
func (b *workerBox) wrap(cmd *exec.Cmd, sb *sandbox) {
	if b == nil || !b.private {
		return
	}
	if sb.setup == config.TmpSetupThread {
		// Started any other way, cmd would run in the host's /tmp with a
		// grant meant for a private one: it fails instead, until the
		// spawner takes the setup (and puts the lookup error back).
		sb.spawner.privateTmp.Store(cmd, &privateTmp{dir: b.tmpDir, binds: b.binds, lookErr: cmd.Err})
		cmd.Err = errPrivateTmpElsewhere
		return
	}
	args := []string{sb.self, NamespaceHelperCommand, sb.mountNS, b.tmpDir, strconv.Itoa(len(b.binds))}
	args = append(args, b.binds...)
	args = append(append(args, "--", cmd.Path), cmd.Args[1:]...)
	cmd.Path, cmd.Args = sb.self, args
	cmd.SysProcAttr = namespaceAttr()
}

// cleanup removes the worker's folder once its process is gone (its mount
// namespace with it).
func (b *workerBox) cleanup() {
	if b != nil {
		os.RemoveAll(b.tmpDir)
	}
}
