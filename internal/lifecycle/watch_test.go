package lifecycle

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"edgeway.dev/edgeway/internal/config"
)

func TestWatchRelevantPaths(t *testing.T) {
	root := "/srv/app/supabase/functions"
	cases := map[string]bool{
		root:                                 true,
		root + "/hello/index.ts":             true,
		root + "/_shared/x.ts":               true,
		root + "/.env":                       true,
		"/srv/app/supabase/config.toml":      true,
		"/srv/app/supabase/gateway.log":      false,
		"/srv/app/supabase/functions-backup": false,
		"/srv/app/config.toml":               false,
	}
	for path, want := range cases {
		if got := relevant(root, path); got != want {
			t.Errorf("relevant(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestOutsideTargets(t *testing.T) {
	project := config.Resolved(t.TempDir()) // as notify reports it
	root := filepath.Join(project, "functions")
	elsewhere := filepath.Join(project, "elsewhere")
	for _, d := range []string{filepath.Join(root, "inside"), filepath.Join(elsewhere, "fn"), filepath.Join(elsewhere, "shared"), filepath.Join(elsewhere, "maps")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"linked": "fn", "_shared": "shared"} {
		if err := os.Symlink(filepath.Join(elsewhere, target), filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	layout := &config.Layout{
		Root:   root,
		Shared: []string{filepath.Join(root, "_shared")},
		Functions: []config.Function{
			{Name: "inside", Dir: filepath.Join(root, "inside"), Deps: config.Deps{MapFile: filepath.Join(root, "import_map.json")}},
			{Name: "linked", Dir: filepath.Join(root, "linked"), Deps: config.Deps{Config: filepath.Join(root, "linked", "deno.json"), MapFile: filepath.Join(root, "linked", "deno.json")}},
			{Name: "tomlmap", Dir: filepath.Join(root, "inside"), Deps: config.Deps{MapFile: filepath.Join(elsewhere, "maps", "m.json"), Lock: filepath.Join(elsewhere, "maps", "deno.lock")}},
			{Name: "parent", Dir: filepath.Join(root, "inside"), Deps: config.Deps{MapFile: filepath.Join(project, "import_map.json")}},
		},
	}
	var got []string
	for key := range outsideTargets(layout) {
		got = append(got, key)
	}
	sort.Strings(got)
	want := []string{
		filepath.Join(elsewhere, "fn") + "/...", // symlinked function folder; its deno.json is inside
		filepath.Join(elsewhere, "maps") + ":deno.lock,m.json",
		filepath.Join(elsewhere, "shared") + "/...",
		project + ":import_map.json",
	}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}
