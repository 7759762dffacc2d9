package lifecycle

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"edgeway.dev/edgeway/internal/config"
)

func TestImportMapJSONMergesSharedUnderUserMap(t *testing.T) {
	layout := &config.Layout{SharedImports: map[string]string{
		"_shared/cors.ts":     "file:///f/_shared/cors.ts",
		"_shared/util.ts":     "file:///f/_shared/util.ts",
		"_lib/a.ts":           "file:///f/_lib/a.ts",
		"_lib/deep/b.ts":      "file:///f/_lib/deep/b.ts",
		"_other/untouched.js": "file:///f/_other/untouched.js",
	}}
	scopes := map[string]map[string]string{"file:///f/x/": {"y": "file:///f/y.ts"}}
	cases := []struct {
		name   string
		user   map[string]string
		scopes map[string]map[string]string
		want   map[string]string
	}{
		{"no user map", nil, nil, layout.SharedImports},
		{
			"user entry wins on the same key, prefix hides the generated entries under it",
			map[string]string{"_shared/util.ts": "file:///mine/util.ts", "_lib/": "file:///mine/lib/", "@x/": "file:///f/fn/x/"},
			scopes,
			map[string]string{
				"_shared/cors.ts":     "file:///f/_shared/cors.ts",
				"_shared/util.ts":     "file:///mine/util.ts",
				"_lib/":               "file:///mine/lib/",
				"_other/untouched.js": "file:///f/_other/untouched.js",
				"@x/":                 "file:///f/fn/x/",
			},
		},
	}
	for _, c := range cases {
		fn := &config.Function{Deps: config.Deps{Imports: c.user, Scopes: c.scopes}}
		out, err := ImportMapJSON(layout, fn)
		if err != nil {
			t.Fatal(err)
		}
		var got importMap
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %v: %s", c.name, err, out)
		}
		if !reflect.DeepEqual(got.Imports, c.want) {
			t.Errorf("%s: imports\n got %v\nwant %v", c.name, got.Imports, c.want)
		}
		if !reflect.DeepEqual(got.Scopes, c.scopes) {
			t.Errorf("%s: scopes %v, want %v", c.name, got.Scopes, c.scopes)
		}
		if again, _ := ImportMapJSON(layout, fn); string(again) != string(out) {
			t.Errorf("%s: not deterministic:\n%s\n%s", c.name, out, again)
		}
	}
}

func TestMappedReadPaths(t *testing.T) {
	deps := config.Deps{
		Imports: map[string]string{
			"@lib/":     "file:///srv/fns/f/lib/",       // inside the function: already readable
			"shared":    "file:///srv/fns/_shared/x.ts", // inside a shared folder
			"@ext/":     "file:///srv/libs/ext/",
			"one":       "file:///srv/single.ts",
			"spaced":    "file:///srv/a%20b/c.ts",
			"is-number": "npm:is-number@7.0.0",
			"std/":      "https://deno.land/std/",
		},
		Scopes: map[string]map[string]string{"file:///srv/fns/f/": {"dup": "file:///srv/libs/ext/", "s": "file:///opt/s/"}},
	}
	got := mappedReadPaths(deps, []string{"/srv/fns/f", "/srv/fns/_shared"})
	want := []string{"/opt/s", "/srv/a b/c.ts", "/srv/libs/ext", "/srv/single.ts"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestDependencyFlags(t *testing.T) {
	cases := []struct {
		deps config.Deps
		want []string
	}{
		{config.Deps{}, []string{"--no-config", "--import-map", "/run/m.json", "--no-lock"}},
		{config.Deps{Config: "/f/deno.json", MapFile: "/f/deno.json"}, []string{"--config", "/f/deno.json", "--import-map", "/run/m.json", "--no-lock"}},
		{config.Deps{MapFile: "/f/import_map.json", Lock: "/f/deno.lock"}, []string{"--no-config", "--import-map", "/run/m.json", "--lock=/f/deno.lock"}},
	}
	for _, c := range cases {
		if got := DependencyFlags(c.deps, "/run/m.json"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%+v: got %v, want %v", c.deps, got, c.want)
		}
	}
}

func TestWriteImportMapIsContentAddressed(t *testing.T) {
	dir := t.TempDir()
	a, err := writeImportMap(dir, []byte(`{"imports":{"a":"file:///a.ts"}}`))
	if err != nil {
		t.Fatal(err)
	}
	again, err := writeImportMap(dir, []byte(`{"imports":{"a":"file:///a.ts"}}`))
	if err != nil || again != a {
		t.Fatalf("same content: %s then %s (%v)", a, again, err)
	}
	b, err := writeImportMap(dir, []byte(`{"imports":{}}`))
	if err != nil || b == a {
		t.Fatalf("other content: %s (%v)", b, err)
	}
	if data, err := os.ReadFile(a); err != nil || string(data) != `{"imports":{"a":"file:///a.ts"}}` {
		t.Fatalf("content: %q %v", data, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("left %d files, want 2 (no temporaries)", len(entries))
	}
	if filepath.Dir(a) != dir {
		t.Errorf("written outside %s: %s", dir, a)
	}
}
