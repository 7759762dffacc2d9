package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/lifecycle"
)

// cache fetches every function's dependencies into Deno's cache (DENO_DIR)
// the way its workers will load them: `deno install --entrypoint` with the
// function's config, generated import map and lock, from its folder and
// with the gateway's environment. Run before traffic (at deploy), it keeps
// downloads out of the first boot's --boot-timeout; workers can then run
// with --deno-flag=--cached-only. Modules imported dynamically with a
// computed specifier cannot be known ahead and are not fetched.
func cache(args []string, stdout, stderr io.Writer) int {
	_, deno, layout, code := loadFolder("cache", args, stdout, stderr)
	if layout == nil {
		return code
	}
	tmp, err := os.MkdirTemp("", "edgeway-cache-")
	if err != nil {
		return fail(stderr, err)
	}
	defer os.RemoveAll(tmp)
	failed := 0
	for i := range layout.Functions {
		fn := &layout.Functions[i]
		if err := cacheFunction(deno, layout, fn, tmp); err != nil {
			failed++
			fmt.Fprintf(stderr, "%s: %v\n", fn.Name, err)
			fmt.Fprintf(stdout, "%s\tFAILED\n", fn.Name)
			continue
		}
		fmt.Fprintf(stdout, "%s\tcached\n", fn.Name)
	}
	if failed > 0 {
		return fail(stderr, errors.New(fmt.Sprint(failed, " function(s) could not be cached")))
	}
	fmt.Fprintf(stdout, "%d functions cached from %s\n", len(layout.Functions), layout.Root)
	return 0
}

// cacheFunction runs `deno install --entrypoint` for one function.
func cacheFunction(deno string, layout *config.Layout, fn *config.Function, tmp string) error {
	content, err := lifecycle.ImportMapJSON(layout, fn)
	if err != nil {
		return err
	}
	importMap := filepath.Join(tmp, fn.Name+".importmap.json")
	if err := os.WriteFile(importMap, content, 0o644); err != nil {
		return fmt.Errorf("write import map: %w", err)
	}
	args := append([]string{"install", "--entrypoint"}, lifecycle.DependencyFlags(fn.Deps, importMap)...)
	cmd := exec.Command(deno, append(args, fn.Entrypoint)...)
	cmd.Dir = fn.Dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "DENO_NO_UPDATE_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("deno install --entrypoint %s: %w\n%s", fn.Entrypoint, err, strings.TrimSpace(string(out)))
	}
	return nil
}
