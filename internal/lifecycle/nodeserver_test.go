package lifecycle

import (
	"os"
	"path/filepath"
	"testing"

	"edgeway.dev/edgeway/internal/config"
)

func TestMayServeNode(t *testing.T) {
	cases := []struct {
		name   string
		files  map[string]string // under the function's folder
		shared map[string]string // under _shared
		deps   config.Deps
		want   bool
	}{
		{"plain Deno.serve", map[string]string{"index.ts": `Deno.serve(() => new Response("hi"));`}, nil, config.Deps{}, false},
		{"node:http", map[string]string{"index.ts": `import http from "node:http";`}, nil, config.Deps{}, true},
		{"npm package", map[string]string{"index.ts": `import express from "npm:express@4";`}, nil, config.Deps{}, true},
		{"require", map[string]string{"lib.cjs": `const x = require("x");`}, nil, config.Deps{}, true},
		{"in a nested module", map[string]string{"index.ts": `import "./lib/a.ts";`, "lib/a.ts": `import "node:fs";`}, nil, config.Deps{}, true},
		{"in shared code", map[string]string{"index.ts": `import "../_shared/a.ts";`}, map[string]string{"a.ts": `import "npm:hono";`}, config.Deps{}, true},
		{"not a source file", map[string]string{"index.ts": `Deno.serve(() => new Response("hi"));`, "notes.md": "npm:x"}, nil, config.Deps{}, false},
		{"node_modules skipped", map[string]string{"index.ts": `Deno.serve(() => new Response("hi"));`, "node_modules/x/i.js": `require("y")`}, nil, config.Deps{}, false},
		{"import map to npm", map[string]string{"index.ts": `import { Hono } from "hono";`}, nil, config.Deps{Imports: map[string]string{"hono": "npm:hono@4"}}, true},
		{"scoped import map to node", map[string]string{"index.ts": `import "x";`}, nil, config.Deps{Scopes: map[string]map[string]string{"/": {"x": "node:http"}}}, true},
		{"package.json", map[string]string{"index.ts": `import { Hono } from "hono";`}, nil, config.Deps{PackageJSON: "/f/package.json"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			dir, shared := filepath.Join(root, "fn"), filepath.Join(root, "_shared")
			write := func(base string, files map[string]string) {
				for name, src := range files {
					p := filepath.Join(base, name)
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			write(dir, c.files)
			write(shared, c.shared)
			fn := &config.Function{Name: "fn", Dir: dir, Deps: c.deps}
			if got := mayServeNode(fn, []string{shared}); got != c.want {
				t.Fatalf("mayServeNode = %v, want %v", got, c.want)
			}
		})
	}
}

// A source file too large to read when the folder loads counts as a yes.
func TestMayServeNodeLargeSource(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.ts"), []byte(`Deno.serve(() => new Response("hi"));`), 0o644); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, maxScannedSource+1)
	for i := range big {
		big[i] = ' '
	}
	if err := os.WriteFile(filepath.Join(dir, "bundle.js"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if !mayServeNode(&config.Function{Name: "fn", Dir: dir}, nil) {
		t.Fatal("a source file over maxScannedSource was read (or counted as no)")
	}
}
