package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const entry = `Deno.serve(() => new Response("x"));`

// tree writes files (relative path → content) under a fresh folder laid
// out like a Supabase project and returns the functions folder.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	project := t.TempDir()
	root := filepath.Join(project, "functions")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func discover(t *testing.T, root string) *Layout {
	t.Helper()
	l, err := Discover(root, Options{MaxWorkers: 1, Timeout: 1})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func furl(path string) string { return FileURL(path).String() }

func TestDepsPrecedence(t *testing.T) {
	// Most specific first; each file maps "a" to a module named after it.
	order := []string{"f/deno.json", "f/deno.jsonc", "f/import_map.json", "deno.json", "deno.jsonc", "import_map.json", "../toml_map.json"}
	files := map[string]string{
		"f/index.ts":     entry,
		"other/index.ts": entry,
		"../config.toml": "[functions.f]\nimport_map = \"./toml_map.json\"\n",
	}
	for i, file := range order {
		files[file] = fmt.Sprintf(`{"imports": {"a": "./m%d.ts"}}`, i)
	}
	root := tree(t, files)
	for i, file := range order {
		f := discover(t, root).Lookup("f")
		want := filepath.Join(root, file)
		if f.Deps.MapFile != want {
			t.Fatalf("with %v present: map file %s, want %s", order[i:], f.Deps.MapFile, want)
		}
		if got, wantAddr := f.Deps.Imports["a"], furl(filepath.Join(filepath.Dir(want), fmt.Sprintf("m%d.ts", i))); got != wantAddr {
			t.Fatalf("%s: imports[a] = %s, want %s", file, got, wantAddr)
		}
		if isDenoConfig(want) != (f.Deps.Config == want) {
			t.Fatalf("%s: Config = %q", file, f.Deps.Config)
		}
		if err := os.Remove(want); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(root, "../config.toml")); err != nil {
		t.Fatal(err)
	}
	if f := discover(t, root).Lookup("f"); !reflect.DeepEqual(f.Deps, Deps{}) {
		t.Fatalf("no file left: %+v", f.Deps)
	}
}

func TestDepsResolvesRelativeEntries(t *testing.T) {
	root := tree(t, map[string]string{
		"f/index.ts": entry,
		"f/deno.jsonc": `{
			// comments and trailing commas, as in any deno.jsonc
			"imports": {
				"@lib/": "./lib/",
				"up/": "../_shared/",
				"abs": "/opt/x.ts",
				"./local.ts": "./other.ts",
				"std/": "https://deno.land/std/",
				"is-number": "npm:is-number@7.0.0",
			},
			"scopes": {"./vendor/": {"a": "./a.ts"}, "https://x.test/": {"b": "../b.ts"}},
		}`,
	})
	d := discover(t, root).Lookup("f").Deps
	dir := filepath.Join(root, "f")
	wantImports := map[string]string{
		"@lib/":                 furl(dir) + "/lib/",
		"up/":                   furl(root) + "/_shared/",
		"abs":                   "file:///opt/x.ts",
		furl(dir) + "/local.ts": furl(dir) + "/other.ts",
		"std/":                  "https://deno.land/std/",
		"is-number":             "npm:is-number@7.0.0",
	}
	if !reflect.DeepEqual(d.Imports, wantImports) {
		t.Errorf("imports:\n got %v\nwant %v", d.Imports, wantImports)
	}
	wantScopes := map[string]map[string]string{
		furl(dir) + "/vendor/": {"a": furl(dir) + "/a.ts"},
		"https://x.test/":      {"b": furl(root) + "/b.ts"},
	}
	if !reflect.DeepEqual(d.Scopes, wantScopes) {
		t.Errorf("scopes:\n got %v\nwant %v", d.Scopes, wantScopes)
	}
}

func TestDepsImportMapFieldAndLock(t *testing.T) {
	root := tree(t, map[string]string{
		"viafield/index.ts":      entry,
		"viafield/deno.json":     `{"importMap": "./maps/m.json"}`,
		"viafield/maps/m.json":   `{"imports": {"x": "./x.ts"}}`,
		"viafield/deno.lock":     `{"version": "5"}`,
		"ignored/index.ts":       entry,
		"ignored/deno.json":      `{"imports": {"x": "./own.ts"}, "importMap": "./missing.json"}`,
		"nolock/index.ts":        entry,
		"nolock/deno.json":       `{"lock": false}`,
		"nolock/deno.lock":       `{"version": "5"}`,
		"movedlock/index.ts":     entry,
		"movedlock/deno.json":    `{"lock": {"path": "./locks/l.lock"}}`,
		"movedlock/locks/l.lock": `{"version": "5"}`,
		"mapped/index.ts":        entry,
		"mapped/import_map.json": `{"imports": {}}`,
		"mapped/deno.lock":       `{"version": "5"}`,
	})
	l := discover(t, root)
	dir := func(n string) string { return filepath.Join(root, n) }

	d := l.Lookup("viafield").Deps
	if d.Config != dir("viafield/deno.json") || d.MapFile != dir("viafield/maps/m.json") || d.Lock != dir("viafield/deno.lock") {
		t.Errorf("importMap field: %+v", d)
	}
	if d.Imports["x"] != furl(dir("viafield/maps/x.ts")) {
		t.Errorf("importMap entries resolve against the map file: %v", d.Imports)
	}
	if got := d.Files(); len(got) != 3 {
		t.Errorf("Files() = %v", got)
	}
	if d := l.Lookup("ignored").Deps; d.MapFile != dir("ignored/deno.json") || d.Imports["x"] != furl(dir("ignored/own.ts")) {
		t.Errorf("importMap must be ignored when imports are set (as Deno does): %+v", d)
	}
	if d := l.Lookup("nolock").Deps; d.Lock != "" {
		t.Errorf(`"lock": false still uses %s`, d.Lock)
	}
	if d := l.Lookup("movedlock").Deps; d.Lock != dir("movedlock/locks/l.lock") {
		t.Errorf(`"lock": {"path"} gave %q`, d.Lock)
	}
	if d := l.Lookup("mapped").Deps; d.Config != "" || d.Lock != dir("mapped/deno.lock") {
		t.Errorf("import_map.json with a lock beside it: %+v", d)
	}
}

func TestDepsErrorsNameFileAndField(t *testing.T) {
	cases := map[string]struct {
		files map[string]string
		want  []string
	}{
		"syntax":                  {map[string]string{"f/deno.json": "{\n  \"imports\": {\n    \"a\": \"./a.ts\"\n    \"b\": 1\n}"}, []string{"f/deno.json", "line 4"}},
		"imports not an object":   {map[string]string{"f/deno.json": `{"imports": ["a"]}`}, []string{"f/deno.json", `field "imports"`, "an array"}},
		"address not a string":    {map[string]string{"f/import_map.json": `{"imports": {"a": 1}}`}, []string{"f/import_map.json", `field "imports"`, `"a"`, "a number"}},
		"scope not an object":     {map[string]string{"import_map.json": `{"scopes": {"./x/": "y"}}`}, []string{"functions/import_map.json", `field "scopes../x/"`}},
		"compilerOptions":         {map[string]string{"f/deno.json": `{"compilerOptions": "strict"}`}, []string{"f/deno.json", `field "compilerOptions"`}},
		"nodeModulesDir":          {map[string]string{"f/deno.json": `{"nodeModulesDir": "yes"}`}, []string{"f/deno.json", `field "nodeModulesDir"`, `"yes"`}},
		"importMap missing":       {map[string]string{"f/deno.json": `{"importMap": "./nope.json"}`}, []string{"f/deno.json", `field "importMap"`, "no such file"}},
		"importMap remote":        {map[string]string{"f/deno.json": `{"importMap": "https://x.test/m.json"}`}, []string{`field "importMap"`, "local file"}},
		"toml import_map missing": {map[string]string{"../config.toml": "[functions.f]\nimport_map = \"./nope.json\"\n"}, []string{"config.toml", `field "functions.f.import_map"`}},
		"null":                    {map[string]string{"f/deno.json": `null`}, []string{"f/deno.json", "JSON object"}},
	}
	for name, c := range cases {
		c.files["f/index.ts"] = entry
		_, err := Discover(tree(t, c.files), Options{MaxWorkers: 1, Timeout: 1})
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", name, err, w)
			}
		}
	}
}

func TestSharedImportsAndSymlinkedFolders(t *testing.T) {
	root := tree(t, map[string]string{
		"f/index.ts":                    entry,
		"_shared/cors.ts":               `export {}`,
		"_shared/deep/util.tsx":         `export {}`,
		"_shared/data.json":             `{}`,
		"_shared/notes.md":              `no`,
		"_shared/node_modules/x/i.js":   `no`,
		"_db/client.mjs":                `export {}`,
		"../elsewhere/linked/index.ts":  entry,
		"../elsewhere/libs/helper.ts":   `export {}`,
		"../elsewhere/libs/sub/deep.js": `export {}`,
	})
	outside := filepath.Join(filepath.Dir(root), "elsewhere")
	if err := os.Symlink(filepath.Join(outside, "linked"), filepath.Join(root, "linked")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "libs"), filepath.Join(root, "_libs")); err != nil {
		t.Fatal(err)
	}
	l := discover(t, root)
	want := map[string]string{
		"_shared/cors.ts":       furl(root) + "/_shared/cors.ts",
		"_shared/deep/util.tsx": furl(root) + "/_shared/deep/util.tsx",
		"_shared/data.json":     furl(root) + "/_shared/data.json",
		"_db/client.mjs":        furl(root) + "/_db/client.mjs",
		"_libs/helper.ts":       furl(root) + "/_libs/helper.ts",
		"_libs/sub/deep.js":     furl(root) + "/_libs/sub/deep.js",
	}
	if !reflect.DeepEqual(l.SharedImports, want) {
		t.Errorf("shared imports:\n got %v\nwant %v", l.SharedImports, want)
	}
	if f := l.Lookup("linked"); f == nil || f.Dir != filepath.Join(root, "linked") {
		t.Errorf("symlinked function folder not discovered: %+v", l.Functions)
	}
}
