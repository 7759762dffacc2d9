package lifecycle

import "testing"

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
