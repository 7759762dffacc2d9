package lifecycle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"edgeway.dev/edgeway/internal/config"
)

// A permission class is everything a pre-booted worker is started with
// that Deno fixes at boot: the permission profile's flags, the read grants
// beyond the function's own folder (the shared folders, what the shared
// import map points to), the default profile's sandbox, the V8 heap limit
// (memoryLimitMb), the generated import map and the boot environment
// (DENO_DIR and the other variables that steer where code loads from).
// Functions of the same class can take each other's pre-booted workers;
// the function's own folder is granted through the worker's slot.

// poolClass is one class, the same for every function that has it.
type poolClass struct {
	key       string
	perms     []string // the profile's flags
	compat    bool     // the default profile's sandbox (sandbox.go)
	shared    []string // read grants outside the function's folder
	memoryMB  int
	importMap []byte
	bootEnv   []string // the variables Deno reads at boot
	// node: its functions may start a node:http server, so its processes
	// load the bootstrap's node:http patch at boot (about 20 ms and 3.5 MiB
	// each: not paid by the classes that never need it).
	node bool
}

// poolFit is what a function's launch spec says about the pool: its class,
// or why it boots fresh.
type poolFit struct {
	class   *poolClass
	refusal string // non-empty: never pooled, and why (debug log)
	entry   string // the entry's path relative to the function's folder
	// links are the slot's links to the shared folders, name in the slot
	// -> real folder, named as in the functions root so that a relative
	// import ("../_shared/cors.ts") resolves through the slot as in the root.
	links map[string]string
	// dir is the function's folder in the slot: a real folder of links to
	// each entry of its own, so that it is the worker's working folder
	// as the kernel reports it and a path relative to it ("./data.json")
	// stays inside the read grant.
	dir string
}

// denoStartupVars are read by Deno when it starts, before any assignment
// could set them: where its cache is (HOME, XDG_CACHE_HOME when DENO_DIR
// is unset), certificates, proxies and tokens for fetching modules, V8
// flags. A function whose own layers change one of them gets a class of
// its own.
var denoStartupVars = []string{"HOME", "XDG_CACHE_HOME", "DENO_CERT", "DENO_TLS_CA_STORE", "DENO_AUTH_TOKENS",
	"DENO_V8_FLAGS", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
	"http_proxy", "https_proxy", "no_proxy"}

// bootEnvVars are a function's variables a pre-booted worker gets at boot:
// what steers where code is loaded from (gatewayOnlyVars, the same for
// every function), what Deno reads at startup (denoStartupVars) and
// edgeway's own (workerRuntimeEnv). At the assignment the bootstrap
// leaves exactly the function's variables.
func bootEnvVars(vars []string) []string {
	var out []string
	for _, kv := range vars {
		k, _, _ := strings.Cut(kv, "=")
		if contains(gatewayOnlyVars, k) || contains(denoStartupVars, k) || slices.Contains(workerRuntimeEnv, kv) {
			out = append(out, kv)
		}
	}
	return out
}

// poolFitFor decides whether spec's workers may come from the pool.
func poolFitFor(opts config.Options, spec *launchSpec, root string, shared []string) poolFit {
	fn := spec.fn
	if opts.PrewarmPool == 0 {
		return poolFit{refusal: "the prewarm pool is off (--prewarm-pool=0)"}
	}
	if opts.Inspect != "" {
		return poolFit{refusal: "--inspect gives every worker a debugger port of its own at boot"}
	}
	if slices.Contains(spec.perms, "--allow-all") {
		return poolFit{refusal: "its profile grants --allow-all: around its folder it would find the slot, not the functions root"}
	}
	d := fn.Deps
	if d.Config != "" || d.Lock != "" || d.PackageJSON != "" || len(d.Imports) > 0 || len(d.Scopes) > 0 {
		return poolFit{refusal: "its deno.json, import map, lock or package.json is read by Deno at boot"}
	}
	rel, err := filepath.Rel(fn.Dir, fn.Entrypoint)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return poolFit{refusal: "its entrypoint lies outside its folder"}
	}
	if spec.compat && underTmp(fn.Dir) {
		return poolFit{refusal: "its folder lies under /tmp, which a pre-booted worker's private /tmp hides"}
	}
	if why := poolScan(fn.Dir); why != "" {
		return poolFit{refusal: why}
	}
	c := &poolClass{perms: spec.perms, compat: spec.compat, memoryMB: fn.Config.MemoryLimitMB, importMap: spec.importMap, bootEnv: bootEnvVars(spec.env.vars), node: spec.nodeServer}
	for _, p := range spec.readable {
		if p != fn.Dir && !strings.HasPrefix(p, fn.Dir+"/") {
			c.shared = append(c.shared, p)
		}
	}
	sum := sha256.Sum256(spec.importMap)
	c.key = strings.Join([]string{
		"perms=" + strings.Join(c.perms, " "),
		"compat=" + strconv.FormatBool(c.compat),
		"read=" + strings.Join(c.shared, ","),
		"memory=" + strconv.Itoa(c.memoryMB),
		"map=" + hex.EncodeToString(sum[:8]),
		"env=" + strings.Join(c.bootEnv, "\x00"),
		"node=" + strconv.FormatBool(c.node),
	}, "|")
	fit := poolFit{class: c, entry: rel, dir: "fn", links: map[string]string{}}
	if in, ok := inRoot(root, fn.Dir); ok {
		fit.dir = in
		for _, sh := range shared {
			if in, ok := inRoot(root, sh); ok {
				fit.links[in] = sh
			}
		}
	}
	return fit
}

// inRoot is p relative to root when it is one folder right under it.
func inRoot(root, p string) (string, bool) {
	if root == "" {
		return "", false
	}
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == "." || strings.Contains(rel, "/") || rel == ".." {
		return "", false
	}
	return rel, true
}

// poolScanLimit bounds the entries poolScan looks at; a larger folder
// boots fresh.
const poolScanLimit = 20000

// poolMarkers in a source file mean the code looks at its main module,
// which in a pre-booted worker is the bootstrap, not its entry.
var poolMarkers = [][]byte{[]byte("import.meta.main"), []byte("Deno.mainModule")}

var errScanStop = errors.New("stop")

// poolScan reports why dir cannot be served by a pre-booted worker, or
// "": a symbolic link leaving the folder (Deno checks read grants on the
// path as written, so a link inside the slot would reach what it points
// to), a source file asking for its main module, too many entries.
func poolScan(dir string) string {
	why := ""
	n := 0
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "its folder cannot be read: " + err.Error()
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			why = "its folder cannot be read: " + err.Error()
			return errScanStop
		}
		if n++; n > poolScanLimit {
			why = "its folder holds more than " + strconv.Itoa(poolScanLimit) + " files to check"
			return errScanStop
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(path)
			if err != nil || (target != real && !strings.HasPrefix(target, real+"/")) {
				rel, _ := filepath.Rel(dir, path)
				why = "the symbolic link " + rel + " leads out of its folder"
				return errScanStop
			}
			return nil
		}
		if d.IsDir() || !sourceExts[filepath.Ext(path)] {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > maxScannedSource {
			return nil // a bundle: it asks for nothing of the kind in practice
		}
		src, err := os.ReadFile(path)
		if err != nil {
			why = "a file cannot be read: " + err.Error()
			return errScanStop
		}
		for _, m := range poolMarkers {
			if bytes.Contains(src, m) {
				rel, _ := filepath.Rel(dir, path)
				why = rel + " reads " + string(m) + ", which in a pre-booted worker names the bootstrap"
				return errScanStop
			}
		}
		return nil
	})
	if err != nil && why == "" {
		why = "its folder cannot be read: " + err.Error()
	}
	return why
}
