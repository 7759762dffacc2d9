package main

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/config"
)

func TestSplitBuildFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want buildFlags
		rest []string
		err  string
	}{
		{[]string{"--out", "dist", "--functions", "f"}, buildFlags{out: "dist", sourcemap: "none"}, []string{"--functions", "f"}, ""},
		{[]string{"--out=dist", "--only", "a, b", "--minify", "--sourcemap=inline", "--no-check", "--deno", "x"}, buildFlags{out: "dist", only: []string{"a", "b"}, minify: true, sourcemap: "inline", noCheck: true}, []string{"--deno", "x"}, ""},
		{[]string{"--functions", "f"}, buildFlags{}, nil, "--out"},
		{[]string{"--out", "d", "--sourcemap", "external"}, buildFlags{}, nil, "want none, linked or inline"},
		{[]string{"--out"}, buildFlags{}, nil, "needs a value"},
	} {
		got, rest, err := splitBuildFlags(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: got %v, want an error containing %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(rest, tc.rest) {
			t.Errorf("%v: got %+v %v %v", tc.args, got, rest, err)
		}
	}
}

func TestRuntimeFilesEnvAndSettings(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"index.ts":       `Deno.env.get("A_KEY"); process.env.B_KEY; process.env["C_KEY"]; Deno.env.get(name);`,
		"lib.tsx":        ``,
		"types.d.ts":     ``,
		"deno.json":      `{}`,
		"function.json":  `{"$schema": "x", "maxWorkers": 2, "timeoutMs": 10000000000}`,
		".env":           `SECRET=1`,
		".git/config":    ``,
		"node_modules/x": ``,
		"page.html":      `<p>`,
		"data/info.json": `{}`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	fn := &config.Function{Name: "f", Dir: dir}
	got, err := runtimeFiles(fn)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rel := range got {
		names = append(names, rel)
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, []string{"data/info.json", "page.html"}) {
		t.Fatalf("runtime files %v", names)
	}
	if env := envNames(fn, &config.Layout{}); !reflect.DeepEqual(env, []string{"A_KEY", "B_KEY", "C_KEY"}) {
		t.Fatalf("env names %v", env)
	}
	fn.Config.Public = true
	settings, err := functionSettings(fn)
	if err != nil {
		t.Fatal(err)
	}
	if string(settings) != `{"auth":false,"maxWorkers":2,"timeoutMs":10000000000}` {
		t.Fatalf("settings %s", settings)
	}
	fn.StaticFiles = []string{filepath.Join(filepath.Dir(dir), "elsewhere.txt")}
	if _, err := runtimeFiles(fn); err == nil || !strings.Contains(err.Error(), "outside the function's folder") {
		t.Fatalf("a static file outside the folder: %v", err)
	}
}
