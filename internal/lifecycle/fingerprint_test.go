package lifecycle

import (
	"os"
	"path/filepath"
	"testing"

	"edgeway.dev/edgeway/internal/config"
)

func TestFingerprintFollowsDependencies(t *testing.T) {
	project := t.TempDir()
	root := filepath.Join(project, "functions")
	outside := filepath.Join(project, "outside")
	files := map[string]string{
		"functions/own/index.ts":                `Deno.serve(() => new Response("x"));`,
		"functions/own/deno.json":               `{"imports": {"@a/": "./a/"}}`,
		"functions/own/deno.lock":               `{"version": "5"}`,
		"functions/own/node_modules/pkg/x.js":   `1`,
		"functions/import_map.json":             `{"imports": {}}`,
		"functions/_shared/util.ts":             `export {}`,
		"outside/linked/index.ts":               `Deno.serve(() => new Response("y"));`,
		"outside/libs/lib.ts":                   `export {}`,
		"functions/other/index.ts":              `Deno.serve(() => new Response("z"));`,
		"functions/other/node_modules/pkg/y.js": `1`,
	}
	for name, content := range files {
		p := filepath.Join(project, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"linked": "linked", "_libs": "libs"} {
		if err := os.Symlink(filepath.Join(outside, target), filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	prints := func() map[string]string {
		l, err := config.Discover(root, config.Options{MaxWorkers: 1, Timeout: 1})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for i := range l.Functions {
			fn := &l.Functions[i]
			imap, err := ImportMapJSON(l, fn)
			if err != nil {
				t.Fatal(err)
			}
			out[fn.Name] = fingerprint(l, fn, functionEnv{}, imap)
		}
		return out
	}
	cases := []struct {
		edit, content string // file under project, rewritten
		changed       []string
	}{
		{"functions/own/deno.json", `{"imports": {"@a/": "./b/"}}`, []string{"own"}},
		{"functions/own/deno.lock", `{"version": "5", "npm": {}}`, []string{"own"}},
		{"functions/own/node_modules/pkg/x.js", `2`, nil}, // Deno's output, not an input
		{"functions/import_map.json", `{"imports": {"x": "./x.ts"}}`, []string{"linked", "other"}},
		{"outside/linked/index.ts", `// edited`, []string{"linked"}},
		{"outside/libs/lib.ts", `// edited`, []string{"own", "linked", "other"}},
		{"functions/_shared/new.ts", `export {}`, []string{"own", "linked", "other"}},
	}
	for _, c := range cases {
		before := prints()
		if err := os.WriteFile(filepath.Join(project, c.edit), []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		after := prints()
		want := map[string]bool{}
		for _, n := range c.changed {
			want[n] = true
		}
		for name := range after {
			if got := before[name] != after[name]; got != want[name] {
				t.Errorf("editing %s: fingerprint of %s changed = %v, want %v", c.edit, name, got, want[name])
			}
		}
	}
}
