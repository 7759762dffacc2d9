package worker

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/secure"
)

// Defaults of the zero Options, the gateway's own.
const (
	// DefaultRequestTimeout bounds one exchange, as the gateway's --timeout.
	DefaultRequestTimeout = 150 * time.Second
	// DefaultBootTimeout bounds the boot, as the gateway's --boot-timeout.
	DefaultBootTimeout = 15 * time.Second
	// DefaultMaxLogLine is the longest output line passed to OnLog, as the
	// gateway's --worker-log-line.
	DefaultMaxLogLine = 8192
)

// Options describe one worker. Exactly one of Code, File and URL is set;
// every other field may be left zero.
type Options struct {
	// Code is the function's source, TypeScript or JavaScript, written to
	// main.ts in the worker's private folder (removed when it stops). It
	// serves with Deno.serve, `export default { fetch }` or a node:http
	// server.
	Code string
	// File is the path of the function's entry module. The worker may
	// read the file's folder and everything below it.
	File string
	// URL is the entry module's URL: file: (treated as File), http: or
	// https: (Deno fetches it; the worker may read no local files).
	URL string

	// Deno is the Deno executable; "" looks up "deno" on PATH.
	Deno string
	// Permissions is a permission profile name ("none", "strict",
	// "standard", "permissive") or a list of Deno permission flags
	// ("--allow-net=api.example.com", "--allow-env"), as function.json's
	// "permissions". Nil means "standard" (--allow-net --allow-env). Reads
	// are always narrowed to the worker's own folder (plus any scoped
	// --allow-read given here; only --allow-all, "permissive", lifts
	// that), and writes go nowhere but its sockets unless a flag grants
	// them.
	Permissions []string
	// Env is the worker's whole environment: the host's is not inherited,
	// except DENO_DIR (resolved as Deno does, so the host's module cache
	// is used) and the variables that steer how Deno loads code
	// (NPM_CONFIG_REGISTRY, DENO_NO_PACKAGE_JSON, DENO_CONDITIONS,
	// DENO_COMPAT). EDGEWAY_*, DENO_SERVE_ADDRESS and DENO_AUTO_SERVE are
	// refused: edgeway sets them for the bootstrap.
	Env map[string]string
	// MemoryLimitMB bounds V8's heap (--max-old-space-size); reaching it
	// ends the process, and calls fail with ErrMemoryLimit. 0 = Deno's
	// default. Unlike the gateway there is no resident-memory watchdog.
	MemoryLimitMB int
	// RequestTimeout bounds one exchange, from sending the request to the
	// end of the response body; 0 = DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxDuration, when set, stops the worker that long after it started:
	// it gets beforeunload (reason "wall_clock"), in-flight requests
	// finish, then it exits. It is not restarted.
	MaxDuration time.Duration
	// Config is a deno.json or deno.jsonc (compilerOptions, imports, lock
	// beside it); without one Deno runs with --no-config.
	Config string
	// ImportMap is an import map file; its imports replace the config's.
	ImportMap string
	// DenoFlags are added to `deno run` before the entry (e.g.
	// "--cached-only").
	DenoFlags []string
	// BootTimeout bounds the time from spawning to serving; 0 =
	// DefaultBootTimeout. Start's context bounds it too.
	BootTimeout time.Duration
	// OnLog receives the worker's output, one call per line (a stack
	// trace with its "at" frames in one call), stream being "stdout" or
	// "stderr". It is called from the output goroutines, concurrently for
	// the two streams, and must not block for long (the worker waits on a
	// full pipe); a panic in it drops that line. Nil drops the output; a
	// boot failure's error still carries the last lines of stderr.
	OnLog func(stream, line string)
	// UnmaskedLogs passes lines to OnLog as written. By default the values
	// of Env variables whose names contain SECRET, KEY, TOKEN, PASSWORD,
	// CREDENTIAL, AUTH or PRIVATE, and URL passwords, are replaced by ***,
	// as in the gateway's log.
	UnmaskedLogs bool
	// MaxLogLine cuts longer lines; 0 = DefaultMaxLogLine.
	MaxLogLine int
}

// entry is where the worker's code comes from, resolved.
type entry struct {
	module   string   // the main module given to Deno
	dir      string   // the working folder
	readable []string // what it may read
}

// resolveEntry turns Code, File or URL into the main module. Inline code
// is written under runDir.
func (o *Options) resolveEntry(runDir string) (entry, error) {
	set := 0
	for _, s := range []string{o.Code, o.File, o.URL} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return entry{}, errors.New("worker: exactly one of Options.Code, File and URL must be set")
	}
	codeDir := filepath.Join(runDir, "fn")
	switch {
	case o.Code != "":
		if err := os.Mkdir(codeDir, 0o700); err != nil {
			return entry{}, fmt.Errorf("worker: %w", err)
		}
		path := filepath.Join(codeDir, "main.ts")
		if err := os.WriteFile(path, []byte(o.Code), 0o600); err != nil {
			return entry{}, fmt.Errorf("worker: write code: %w", err)
		}
		return entry{module: config.FileURL(path).String(), dir: codeDir, readable: []string{codeDir}}, nil
	case o.File != "":
		return fileEntry(o.File)
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return entry{}, fmt.Errorf("worker: Options.URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return entry{}, fmt.Errorf("worker: Options.URL %q: a file URL must name a local file", o.URL)
		}
		return fileEntry(filepath.FromSlash(u.Path))
	case "http", "https":
		// An empty working folder: nothing local is read, and Deno finds
		// no deno.json of the host's there.
		if err := os.Mkdir(codeDir, 0o700); err != nil {
			return entry{}, fmt.Errorf("worker: %w", err)
		}
		return entry{module: u.String(), dir: codeDir}, nil
	}
	return entry{}, fmt.Errorf("worker: Options.URL %q: the scheme must be file, http or https", o.URL)
}

// fileEntry is an entry file on disk: its folder is readable and the
// working folder.
func fileEntry(path string) (entry, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return entry{}, fmt.Errorf("worker: entry %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return entry{}, fmt.Errorf("worker: entry: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return entry{}, fmt.Errorf("worker: entry %s is not a regular file", abs)
	}
	dir := filepath.Dir(abs)
	if err := secure.CheckPermissionPath(dir); err != nil {
		return entry{}, fmt.Errorf("worker: entry folder: %w", err)
	}
	return entry{module: config.FileURL(abs).String(), dir: dir, readable: []string{dir}}, nil
}

// deps reads Config and ImportMap.
func (o *Options) deps() (config.Deps, error) {
	var d config.Deps
	if o.Config != "" {
		var err error
		if d, err = config.LoadDeps(o.Config); err != nil {
			return d, fmt.Errorf("worker: Options.Config: %w", err)
		}
		if d.Config == "" {
			return d, fmt.Errorf("worker: Options.Config %s: must be named deno.json or deno.jsonc (an import map goes in ImportMap)", o.Config)
		}
	}
	if o.ImportMap != "" {
		m, err := config.LoadDeps(o.ImportMap)
		if err != nil {
			return d, fmt.Errorf("worker: Options.ImportMap: %w", err)
		}
		if m.Config != "" {
			return d, fmt.Errorf("worker: Options.ImportMap %s is a Deno config: use Options.Config", o.ImportMap)
		}
		d.MapFile, d.Imports, d.Scopes = m.MapFile, m.Imports, m.Scopes
	}
	return d, nil
}

// denoPath finds Deno.
func (o *Options) denoPath() (string, error) {
	name := o.Deno
	if name == "" {
		name = "deno"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("worker: Deno not found (set Options.Deno): %w", err)
	}
	return p, nil
}

// permissions resolves Permissions as function.json's "permissions".
func (o *Options) permissions() ([]string, error) {
	profiles, err := secure.ParseProfiles(nil)
	if err != nil {
		return nil, err
	}
	flags, err := profiles.Resolve(o.Permissions)
	if err != nil {
		return nil, fmt.Errorf("worker: Options.Permissions: %w", err)
	}
	return flags, nil
}
