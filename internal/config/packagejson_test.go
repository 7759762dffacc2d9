package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWithPackageJSON(t *testing.T) {
	tests := []struct {
		name    string
		pkg     string
		mapped  map[string]string // the function's own imports
		want    map[string]string
		wantErr string
	}{
		{"dependencies and scoped names", `{"dependencies": {"hono": "^4.6.0", "@hono/node-server": "1.13.0"}, "devDependencies": {"zod": "3"}}`, nil,
			map[string]string{"hono": "npm:hono@^4.6.0", "hono/": "npm:/hono@^4.6.0/", "@hono/node-server": "npm:@hono/node-server@1.13.0", "zod/": "npm:/zod@3/"}, ""},
		{"deno.json wins", `{"dependencies": {"hono": "4"}}`, map[string]string{"hono": "jsr:@hono/hono@4"},
			map[string]string{"hono": "jsr:@hono/hono@4", "hono/": "npm:/hono@4/"}, ""},
		{"npm alias", `{"dependencies": {"h": "npm:hono@4"}}`, nil, map[string]string{"h": "npm:hono@4"}, ""},
		{"empty version", `{"dependencies": {"hono": ""}}`, nil, map[string]string{"hono": "npm:hono@*"}, ""},
		{"file dependency", `{"dependencies": {"x": "file:../x"}}`, nil, nil, `"dependencies.x"`},
		{"git dependency", `{"dependencies": {"x": "github:a/b"}}`, nil, nil, "only npm registry"},
		{"bad name", `{"dependencies": {"../x": "1"}}`, nil, nil, "not an npm package name"},
		{"dependencies not an object", `{"dependencies": ["hono"]}`, nil, nil, "want an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(tt.pkg), 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := withPackageJSON(Deps{Imports: tt.mapped}, dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if d.Imports[k] != v {
					t.Errorf("%s -> %q, want %q", k, d.Imports[k], v)
				}
			}
			if d.PackageJSON != filepath.Join(dir, "package.json") {
				t.Errorf("PackageJSON = %q", d.PackageJSON)
			}
		})
	}
	if d, err := withPackageJSON(Deps{}, t.TempDir()); err != nil || d.PackageJSON != "" || d.Imports != nil {
		t.Fatalf("no package.json: %+v, %v", d, err)
	}
}

// FuzzNpmTarget: an accepted dependency always becomes name@version (or
// an npm: alias), never a path, URL or another scheme.
func FuzzNpmTarget(f *testing.F) {
	for _, s := range [][2]string{{"hono", "^4"}, {"@hono/node-server", "1.0.0"}, {"x", "npm:y@1"}, {"x", "file:../x"}, {"../x", "1"}, {"x", "git+https://a/b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, version string) {
		target, err := npmTarget(name, version)
		if err != nil {
			return
		}
		if !npmName.MatchString(name) {
			t.Fatalf("accepted name %q", name)
		}
		if strings.HasPrefix(strings.TrimSpace(version), "npm:") {
			return
		}
		if !strings.HasPrefix(target, name+"@") || strings.ContainsAny(target[len(name)+1:], ":/#") {
			t.Fatalf("npmTarget(%q, %q) = %q", name, version, target)
		}
	})
}
