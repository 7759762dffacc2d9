package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/lifecycle"
	"edgeway.dev/edgeway/internal/setup"
)

// edgewayTypes declares what the bootstrap gives every function, so
// `deno check` knows EdgeRuntime.
const edgewayTypes = `declare const EdgeRuntime: { waitUntil<T>(promise: Promise<T>): Promise<T> };
`

// check validates a functions folder for CI before deploy: every
// function.json against its JSON Schema (each problem with its file and
// field), discovery, .env and config.toml, permission profiles, and a
// `deno check` type-check of each entrypoint with the config, import map
// and lock its workers run with. It prints a table and returns non-zero on
// any error.
func check(args []string, stdout, stderr io.Writer) int {
	opts, deno, code, ok := folderArgs("check", args, stdout, stderr)
	if !ok {
		return code
	}
	// Every function.json against the schema first: all problems of all
	// files at once, where loading stops at the first.
	problems, err := config.CheckFunctionFiles(opts.Functions)
	if err != nil {
		return fail(stderr, err)
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	if len(problems) > 0 {
		return fail(stderr, fmt.Errorf("%d problem(s) in function.json files", len(problems)))
	}
	layout, err := config.Discover(opts.Functions, opts)
	if err != nil {
		return fail(stderr, err)
	}
	if err := lifecycle.Validate(opts, layout); err != nil {
		return fail(stderr, err)
	}
	for _, w := range setup.StartupWarnings(opts, layout) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	tmp, err := os.MkdirTemp("", "edgeway-check-")
	if err != nil {
		return fail(stderr, err)
	}
	defer os.RemoveAll(tmp)

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tROUTE\tAUTH\tPERMISSIONS\tPOOL\tCHECK")
	failed := 0
	for _, fn := range layout.Functions {
		auth, perms := functionAccess(opts, fn)
		result := "ok"
		out, err := typeCheck(deno, layout, &fn, tmp)
		var checkErr *exec.ExitError
		if err != nil && !errors.As(err, &checkErr) {
			return fail(stderr, err)
		}
		if err != nil {
			failed++
			result = "FAILED"
			fmt.Fprintf(stderr, "%s: deno check failed:\n%s\n", fn.Name, strings.TrimSpace(string(out)))
		}
		fmt.Fprintf(tw, "%s\t/functions/v1/%s, /%s\t%s\t%s\t%d-%d\t%s\n", fn.Name, fn.Name, fn.Name, auth, perms, fn.Config.MinWorkers, fn.Config.MaxWorkers, result)
	}
	tw.Flush()
	reportStaticFiles(stdout, layout)
	if failed > 0 {
		return fail(stderr, errors.New(fmt.Sprint(failed, " function(s) failed to type-check")))
	}
	fmt.Fprintf(stdout, "%d functions ok in %s\n", len(layout.Functions), layout.Root)
	return 0
}

// typeCheck runs deno check on fn's entrypoint with the config, import
// map and lock its workers run with, and the edgeway declarations (written
// into tmp). A type error is an *exec.ExitError with Deno's output.
func typeCheck(deno string, layout *config.Layout, fn *config.Function, tmp string) ([]byte, error) {
	// The declarations go in as a second root file rather than through a
	// config of our own, so the function's deno.json still applies.
	types := filepath.Join(tmp, "edgeway.d.ts")
	if err := os.WriteFile(types, []byte(edgewayTypes), 0o644); err != nil {
		return nil, err
	}
	importMap := filepath.Join(tmp, fn.Name+".importmap.json")
	content, err := lifecycle.ImportMapJSON(layout, fn)
	if err == nil {
		err = os.WriteFile(importMap, content, 0o644)
	}
	if err != nil {
		return nil, err
	}
	args := append([]string{"check"}, lifecycle.DependencyFlags(fn.Deps, importMap)...)
	cmd := exec.Command(deno, append(args, fn.Entrypoint, types)...)
	cmd.Dir = fn.Dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	return cmd.CombinedOutput()
}

// loadFolder is what check and cache start with: the flags, the Deno
// executable as an absolute path and the discovered functions folder. On
// an error it prints one line and returns a nil layout and the exit code
// (0 after --help, which prints the command's usage to stdout).
func loadFolder(command string, args []string, stdout, stderr io.Writer) (config.Options, string, *config.Layout, int) {
	opts, deno, code, ok := folderArgs(command, args, stdout, stderr)
	if !ok {
		return opts, "", nil, code
	}
	layout, err := config.Discover(opts.Functions, opts)
	if err != nil {
		return opts, "", nil, fail(stderr, err)
	}
	return opts, deno, layout, 0
}

// folderArgs parses a folder command's flags and finds Deno. When it
// returns !ok it has printed why (or the usage) and code is the exit code.
func folderArgs(command string, args []string, stdout, stderr io.Writer) (config.Options, string, int, bool) {
	opts, err := config.Parse(args, os.Getenv)
	if errors.Is(err, config.ErrHelp) {
		commandUsage(stdout, command)
		return opts, "", 0, false
	}
	if err != nil {
		fmt.Fprintf(stderr, "edgeway %s: %v\n", command, err)
		return opts, "", 2, false
	}
	deno, err := exec.LookPath(opts.Deno)
	if err == nil {
		deno, err = filepath.Abs(deno)
	}
	if err != nil {
		return opts, "", fail(stderr, setup.DenoNotFound(opts.Deno, err)), false
	}
	return opts, deno, 0, true
}
