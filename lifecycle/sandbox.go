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

	"edgeway/config"
	"edgeway/secure"

	"github.com/rs/zerolog"
)

// What a function of the default permission profile may touch beyond its
// own files, as on Supabase: /tmp (read and write), its own TMPDIR, Deno's
// npm cache (read) and a few read-only facts about the machine (sys). Other
// profiles get none of it: they say exactly what they grant.
//
// /tmp is private to each worker where the OS allows it: a mount namespace
// in which the worker's own folder is bound on /tmp (see nshelper.go).
// Otherwise the host's /tmp is granted and workers see each other's files,
// and any symbolic link someone planted there: Deno checks paths as
// written, so /tmp/link/x is readable when /tmp/link points anywhere.
//
// A /tmp grant would cover what edgeway itself keeps under /tmp: its
// runtime folder (every worker's socket, the bootstrap, import maps), and
// in tests or odd deployments the functions folder, DENO_DIR or Deno.
// Those are denied explicitly (--deny-read/--deny-write): Deno lets a more
// specific grant win over a broader denial, so the worker's own sockets,
// folder and TMPDIR stay reachable and nothing else there is.

const tmpRoot = "/tmp"

// sandbox is resolved once at startup.
type sandbox struct {
	tmp      string   // config.TmpPrivate, TmpShared or TmpOff after auto
	npmCache string   // "" when not granted
	sys      []string // --allow-sys names
	self     string   // this executable, for the namespace helper
	// Paths under /tmp a worker must neither read nor write (the runtime
	// folder, the project folder holding config.toml and the functions,
	// --env-file files), and must not write (DENO_DIR, Deno).
	guarded      []string
	writeGuarded []string
	// Paths under /tmp every worker with a private /tmp needs bound back.
	binds []string
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

// newSandbox resolves --function-tmp (probing the namespace for auto),
// --function-npm-read and --function-sys. Options with no --function-tmp
// at all (unit tests) give nil: workers get nothing extra.
func newSandbox(opts config.Options, layout *config.Layout, runDir string, log zerolog.Logger) (*sandbox, error) {
	if opts.FunctionTmp == "" {
		return nil, nil
	}
	sb := &sandbox{tmp: opts.FunctionTmp, sys: opts.FunctionSys}
	denoDir, npmCache := denoDirs(opts.Deno)
	if opts.FunctionNpmRead && secure.CheckPermissionPath(npmCache) == nil {
		sb.npmCache = npmCache
	}
	project := filepath.Dir(layout.Root)
	for _, p := range append([]string{runDir, project}, opts.EnvFiles...) {
		if abs, err := filepath.Abs(p); err == nil && underTmp(abs) {
			sb.guarded = append(sb.guarded, abs)
		}
	}
	if underTmp(denoDir) {
		// Created now, so that workers with a private /tmp share it
		// instead of each filling its own.
		os.MkdirAll(denoDir, 0o755)
	}
	for _, p := range []string{denoDir, opts.Deno} {
		if underTmp(p) {
			sb.writeGuarded = append(sb.writeGuarded, p)
		}
	}
	if sb.tmp == config.TmpOff {
		return sb, nil
	}
	for _, p := range append(slices.Clone(sb.guarded), sb.writeGuarded...) {
		if filepath.Clean(p) == tmpRoot {
			err := fmt.Errorf("flag --function-tmp: %s is /tmp itself, which functions would then reach", p)
			if opts.FunctionTmp == config.TmpAuto {
				log.Warn().Err(err).Msg("functions get no /tmp, only their TMPDIR")
				sb.tmp = config.TmpOff
				return sb, nil
			}
			return nil, err
		}
	}
	sb.binds = append([]string{runDir, project, denoDir, opts.Deno}, layout.Shared...)
	if sb.tmp == config.TmpShared {
		return sb, nil
	}
	self, err := os.Executable()
	if err == nil && strings.HasSuffix(self, ".test") {
		// A Go test binary would run its tests again, not the helper.
		err = errors.New("not the edgeway executable")
	}
	if err == nil {
		sb.self = self
		err = sb.probe(runDir)
	}
	switch {
	case err == nil:
		sb.tmp = config.TmpPrivate
	case opts.FunctionTmp == config.TmpPrivate:
		return nil, fmt.Errorf("flag --function-tmp=private: this system does not let edgeway give workers a private /tmp: %w", err)
	default:
		log.Warn().Err(err).Msg("no private /tmp per worker on this system (mount namespaces refused): functions share the host's /tmp and see each other's files (--function-tmp=shared; --function-tmp=off to refuse them /tmp)")
		sb.tmp = config.TmpShared
	}
	return sb, nil
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
	cmd := exec.CommandContext(ctx, sb.self, NamespaceHelperCommand, dir, "0", "--")
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
	binds   []string // what the helper binds back under the private /tmp
}

// compatProfile reports whether a function's permissions are the default
// profile, which gets what Supabase's functions get.
func compatProfile(perms []string) bool {
	return len(perms) == 0 || (len(perms) == 1 && perms[0] == secure.DefaultProfile)
}

// box prepares worker id's folder and flags; nil when its profile gets
// none of it.
func (sb *sandbox) box(spec *launchSpec, runDir string, id uint64) (*workerBox, error) {
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
		b.private, b.binds = true, sb.workerBinds(spec)
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
	if sb.tmp != config.TmpOff {
		if len(sb.guarded) > 0 {
			b.perms = append(b.perms, "--deny-read="+strings.Join(sb.guarded, ","))
		}
		if deny := append(slices.Clone(sb.guarded), sb.writeGuarded...); len(deny) > 0 {
			b.perms = append(b.perms, "--deny-write="+strings.Join(deny, ","))
		}
	}
	return b, nil
}

// workerBinds lists the paths under /tmp a worker of spec must still
// reach inside its private /tmp, leaving out those inside another.
func (sb *sandbox) workerBinds(spec *launchSpec) []string {
	var out []string
	for _, p := range append(append(slices.Clone(sb.binds), spec.readable...), spec.fn.Dir) {
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

// wrap makes cmd start through the namespace helper when the worker has a
// private /tmp: the helper is this executable, the same pid becomes Deno.
func (b *workerBox) wrap(cmd *exec.Cmd, sb *sandbox) {
	if b == nil || !b.private {
		return
	}
	self := sb.self
	args := []string{self, NamespaceHelperCommand, b.tmpDir, strconv.Itoa(len(b.binds))}
	args = append(args, b.binds...)
	args = append(append(args, "--"), cmd.Args...)
	args[len(args)-len(cmd.Args)] = cmd.Path
	cmd.Path, cmd.Args = self, args
	cmd.SysProcAttr = namespaceAttr()
}

// cleanup removes the worker's folder once its process is gone (its mount
// namespace with it).
func (b *workerBox) cleanup() {
	if b != nil {
		os.RemoveAll(b.tmpDir)
	}
}
