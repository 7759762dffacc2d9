package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"edgeway.dev/edgeway/internal/artifact"
	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/lifecycle"
	"edgeway.dev/edgeway/internal/setup"
)

func init() {
	commandHelp["build"] = "Bundle every function of a folder into an artifact folder for `serve --prebuilt`:\n" +
		"  --out DIST            the folder to write (replaced if it holds an earlier build)\n" +
		"  --only a,b            only these functions\n" +
		"  --minify              minify the bundles\n" +
		"  --sourcemap MODE      none (default), linked (index.js.map beside) or inline\n" +
		"  --no-check            skip the type check (deno check, as edgeway check runs it)\n" +
		"Exits non-zero on any error edgeway check would report or a failed bundle."
}

// bundleName is every function's bundle inside its artifact folder.
const bundleName = "index.js"

// buildFlags are build's own flags; the others are serve's (they decide
// discovery: --functions, --deno, --public-functions, ...).
type buildFlags struct {
	out       string
	only      []string
	minify    bool
	sourcemap string // none, linked, inline
	noCheck   bool   // skip the type check
}

// splitBuildFlags takes build's own flags out of args.
func splitBuildFlags(args []string) (buildFlags, []string, error) {
	f := buildFlags{sourcemap: "none"}
	var rest []string
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") {
			rest = append(rest, args[i])
			continue
		}
		needValue := func() (string, error) {
			if hasValue {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag --%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		switch name {
		case "out":
			v, err := needValue()
			if err != nil {
				return f, nil, err
			}
			f.out = v
		case "only":
			v, err := needValue()
			if err != nil {
				return f, nil, err
			}
			for _, n := range strings.Split(v, ",") {
				if n = strings.TrimSpace(n); n != "" {
					f.only = append(f.only, n)
				}
			}
		case "sourcemap":
			v, err := needValue()
			if err != nil {
				return f, nil, err
			}
			if v != "none" && v != "linked" && v != "inline" {
				return f, nil, fmt.Errorf("flag --sourcemap: want none, linked or inline, got %q", v)
			}
			f.sourcemap = v
		case "minify":
			f.minify = !hasValue || value == "true"
		case "no-check":
			f.noCheck = !hasValue || value == "true"
		default:
			rest = append(rest, args[i])
		}
	}
	if f.out == "" {
		return f, nil, errors.New("flag --out: the folder to write the artifact to is required")
	}
	return f, rest, nil
}

// build bundles every function of a folder into an artifact folder: per
// function its entry bundled with its import map or deno.json applied,
// shared modules and npm packages inlined, the other files it may read at
// run time, and manifest.json. It validates what check validates (the
// type check too, unless --no-check) and fails on any error.
func build(args []string, stdout, stderr io.Writer) int {
	bf, rest, err := splitBuildFlags(args)
	if err != nil {
		if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "--help" || a == "-help" }) {
			commandUsage(stdout, "build")
			return 0
		}
		fmt.Fprintf(stderr, "edgeway build: %v\n", err)
		return 2
	}
	opts, deno, layout, code := loadFolder("build", rest, stdout, stderr)
	if layout == nil {
		return code
	}
	if layout.Artifact != nil {
		return fail(stderr, errors.New("build reads a functions folder (--functions), not an artifact: unset --prebuilt and --state-dir"))
	}
	if err := lifecycle.Validate(opts, layout); err != nil {
		return fail(stderr, err)
	}
	for _, w := range setup.StartupWarnings(opts, layout) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fns, err := selectFunctions(layout, bf.only)
	if err != nil {
		return fail(stderr, err)
	}
	info, err := denoInfo(deno, layout.Root)
	if err != nil {
		return fail(stderr, err)
	}
	out, err := filepath.Abs(bf.out)
	if err != nil {
		return fail(stderr, err)
	}
	if err := checkOutFolder(out, layout.Root); err != nil {
		return fail(stderr, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fail(stderr, err)
	}
	stage, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".build-")
	if err != nil {
		return fail(stderr, err)
	}
	defer os.RemoveAll(stage)
	work, err := os.MkdirTemp("", "edgeway-build-")
	if err != nil {
		return fail(stderr, err)
	}
	defer os.RemoveAll(work)

	if !bf.noCheck {
		failed := 0
		for i := range fns {
			out, err := typeCheck(deno, layout, &fns[i], work)
			var checkErr *exec.ExitError
			if err != nil && !errors.As(err, &checkErr) {
				return fail(stderr, err)
			}
			if err != nil {
				failed++
				fmt.Fprintf(stderr, "%s: deno check failed:\n%s\n", fns[i].Name, strings.TrimSpace(string(out)))
			}
		}
		if failed > 0 {
			return fail(stderr, fmt.Errorf("%d function(s) failed to type-check (--no-check skips it)", failed))
		}
	}
	m := &artifact.Manifest{Schema: artifact.SchemaVersion, Edgeway: version, Deno: info.DenoVersion}
	b := &bundler{deno: deno, layout: layout, denoDir: info.DenoDir, work: work, flags: bf}
	for _, fn := range fns {
		af, err := b.function(fn, filepath.Join(stage, artifact.FunctionsDir, fn.Name))
		if err != nil {
			return fail(stderr, err)
		}
		m.Functions = append(m.Functions, af)
		fmt.Fprintf(stdout, "%s\t%d files\t%s %d bytes\n", fn.Name, len(af.Files), bundleName, fileSize(af.Files, bundleName))
	}
	raw, err := artifact.Encode(m)
	if err != nil {
		return fail(stderr, err)
	}
	if err := os.WriteFile(filepath.Join(stage, artifact.ManifestName), raw, 0o644); err != nil {
		return fail(stderr, err)
	}
	if err := os.Chmod(stage, 0o755); err != nil {
		return fail(stderr, err)
	}
	if err := os.RemoveAll(out); err != nil {
		return fail(stderr, err)
	}
	if err := os.Rename(stage, out); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "%d functions built into %s\n", len(m.Functions), out)
	return 0
}

// fileSize is the size of the file at path in files (0 if absent).
func fileSize(files []artifact.File, path string) int64 {
	for _, f := range files {
		if f.Path == path {
			return f.Size
		}
	}
	return 0
}

// selectFunctions applies --only: every name must be a function.
func selectFunctions(layout *config.Layout, only []string) ([]config.Function, error) {
	if len(only) == 0 {
		return layout.Functions, nil
	}
	var out []config.Function
	for _, name := range only {
		fn := layout.Lookup(name)
		if fn == nil {
			return nil, fmt.Errorf("flag --only: no function %q in %s", name, layout.Root)
		}
		out = append(out, *fn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// checkOutFolder refuses to replace anything but an earlier artifact, and
// an output inside the functions folder (it would become a function).
func checkOutFolder(out, root string) error {
	if rel, err := filepath.Rel(root, out); err == nil && !strings.HasPrefix(rel, "..") {
		return fmt.Errorf("flag --out: %s is inside the functions folder %s", out, root)
	}
	entries, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("flag --out: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(out, artifact.ManifestName)); err != nil {
		return fmt.Errorf("flag --out: %s is not empty and holds no earlier build (%s): refusing to replace it", out, artifact.ManifestName)
	}
	return nil
}

type denoInfoJSON struct {
	DenoVersion string `json:"denoVersion"`
	DenoDir     string `json:"denoDir"`
}

// denoInfo asks Deno its version and cache folder.
func denoInfo(deno, dir string) (denoInfoJSON, error) {
	var info denoInfoJSON
	cmd := exec.Command(deno, "info", "--json", "--no-config")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "DENO_NO_UPDATE_CHECK=1")
	out, err := cmd.Output()
	if err != nil {
		return info, fmt.Errorf("deno info: %w", err)
	}
	if err := json.Unmarshal(out, &info); err != nil || info.DenoVersion == "" {
		return info, fmt.Errorf("deno info: unexpected output %.200q", out)
	}
	return info, nil
}

// bundler builds one function at a time.
type bundler struct {
	deno    string
	layout  *config.Layout
	denoDir string
	work    string // scratch folder
	flags   buildFlags
}

// function writes fn's bundle and runtime files into dir and describes
// them.
func (b *bundler) function(fn config.Function, dir string) (artifact.Function, error) {
	af := artifact.Function{Name: fn.Name, Entry: bundleName}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return af, err
	}
	code, sourceMap, err := b.bundle(&fn)
	if err != nil {
		return af, err
	}
	files := map[string][]byte{}
	switch b.flags.sourcemap {
	case "linked":
		files[bundleName+".map"] = sourceMap
	case "inline":
		code = append(code, "//# sourceMappingURL=data:application/json;base64,"+base64.StdEncoding.EncodeToString(sourceMap)+"\n"...)
	}
	files[bundleName] = code
	runtime, err := runtimeFiles(&fn)
	if err != nil {
		return af, err
	}
	for rel, src := range runtime {
		if _, taken := files[rel]; taken {
			continue // a source file of the same name is in the bundle
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return af, fmt.Errorf("function %s: %w", fn.Name, err)
		}
		files[rel] = data
	}
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return af, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return af, err
		}
		sum := sha256.Sum256(data)
		af.Files = append(af.Files, artifact.File{Path: rel, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	}
	sort.Slice(af.Files, func(i, j int) bool { return af.Files[i].Path < af.Files[j].Path })
	if af.Settings, err = functionSettings(&fn); err != nil {
		return af, err
	}
	af.Env = envNames(&fn, b.layout)
	return af, nil
}

// bundle runs deno bundle on fn's entry with the config, import map and
// lock its workers would run with, then makes the output independent of
// this machine: paths into Deno's cache are written $DENO_DIR/..., source
// map sources relative to the functions folder. It returns the code
// (without a source map comment unless linked) and the rewritten map
// (nil unless asked for).
func (b *bundler) bundle(fn *config.Function) ([]byte, []byte, error) {
	imap, err := lifecycle.ImportMapJSON(b.layout, fn)
	if err != nil {
		return nil, nil, err
	}
	imapPath := filepath.Join(b.work, fn.Name+".importmap.json")
	if err := os.WriteFile(imapPath, imap, 0o644); err != nil {
		return nil, nil, err
	}
	outFile := filepath.Join(b.work, fn.Name, bundleName)
	args := append([]string{"bundle"}, lifecycle.DependencyFlags(fn.Deps, imapPath)...)
	args = append(args, "--platform", "deno", "--format", "esm", "--packages", "bundle", "--output", outFile)
	if b.flags.minify {
		args = append(args, "--minify")
	}
	if b.flags.sourcemap != "none" {
		args = append(args, "--sourcemap", "linked")
	}
	cmd := exec.Command(b.deno, append(args, fn.Entrypoint)...)
	// Paths esbuild writes into comments are relative to the working
	// folder: the functions folder makes them the same on every machine.
	cmd.Dir = b.layout.Root
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "DENO_NO_UPDATE_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("function %s: deno bundle failed:\n%s", fn.Name, strings.TrimSpace(string(out)))
	}
	code, err := os.ReadFile(outFile)
	if err != nil {
		return nil, nil, fmt.Errorf("function %s: deno bundle wrote no %s: %w", fn.Name, bundleName, err)
	}
	if rel, err := filepath.Rel(b.layout.Root, b.denoDir); err == nil && b.denoDir != "" {
		code = bytes.ReplaceAll(code, []byte(filepath.ToSlash(rel)+"/"), []byte("$DENO_DIR/"))
	}
	if b.flags.sourcemap == "none" {
		return code, nil, nil
	}
	raw, err := os.ReadFile(outFile + ".map")
	if err != nil {
		return nil, nil, fmt.Errorf("function %s: deno bundle wrote no source map: %w", fn.Name, err)
	}
	sm, err := b.rewriteSourceMap(raw, filepath.Dir(outFile))
	if err != nil {
		return nil, nil, fmt.Errorf("function %s: source map: %w", fn.Name, err)
	}
	if b.flags.sourcemap == "inline" {
		code = bytes.TrimSuffix(bytes.TrimRight(code, "\n"), []byte("//# sourceMappingURL="+bundleName+".map"))
	}
	return code, sm, nil
}

// rewriteSourceMap makes every source relative to the functions folder
// (Deno's cache as $DENO_DIR/...); esbuild wrote them relative to the
// scratch folder the bundle was written in.
func (b *bundler) rewriteSourceMap(raw []byte, mapDir string) ([]byte, error) {
	var sm map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sm); err != nil {
		return nil, err
	}
	var sources []string
	if err := json.Unmarshal(sm["sources"], &sources); err != nil {
		return nil, err
	}
	for i, s := range sources {
		if strings.Contains(s, ":") {
			continue // a URL
		}
		abs := filepath.Clean(filepath.Join(mapDir, filepath.FromSlash(s)))
		if rel, err := filepath.Rel(b.denoDir, abs); err == nil && b.denoDir != "" && !strings.HasPrefix(rel, "..") {
			sources[i] = "$DENO_DIR/" + filepath.ToSlash(rel)
		} else if rel, err := filepath.Rel(b.layout.Root, abs); err == nil {
			sources[i] = filepath.ToSlash(rel)
		}
	}
	var err error
	if sm["sources"], err = json.Marshal(sources); err != nil {
		return nil, err
	}
	return json.Marshal(sm) // keys sorted: deterministic
}
