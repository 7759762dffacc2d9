package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSymlinksLeavingAFunctionAreRefused(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
	os.MkdirAll(filepath.Join(outside, "realfn"), 0o755)
	os.WriteFile(filepath.Join(outside, "realfn", "index.ts"), []byte(""), 0o644)
	os.Symlink("data.txt", filepath.Join(outside, "realfn", "alias.txt"))
	os.WriteFile(filepath.Join(outside, "realfn", "data.txt"), []byte(""), 0o644)

	cases := []struct {
		name  string
		setup func(root string)
		bad   string // the link the error must name; "" = accepted
	}{
		{"no links", func(string) {}, ""},
		{"link inside the function", func(root string) {
			os.Symlink("index.ts", filepath.Join(root, "fn", "alias.ts"))
		}, ""},
		{"link into a shared folder", func(root string) {
			os.Symlink("../_shared/util.ts", filepath.Join(root, "fn", "util.ts"))
		}, ""},
		{"symlinked function folder with links inside its target", func(root string) {
			os.Symlink(filepath.Join(outside, "realfn"), filepath.Join(root, "linked"))
		}, ""},
		{"link to /etc", func(root string) {
			os.Symlink("/etc", filepath.Join(root, "fn", "etc"))
		}, "fn/etc"},
		{"deep link to a file outside", func(root string) {
			os.MkdirAll(filepath.Join(root, "fn", "a", "b"), 0o755)
			os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "fn", "a", "b", "s"))
		}, "fn/a/b/s"},
		{"link to another function", func(root string) {
			os.Symlink("../other/index.ts", filepath.Join(root, "fn", "o.ts"))
		}, "fn/o.ts"},
		{"dangling link outside", func(root string) {
			os.Symlink("/nonexistent/x", filepath.Join(root, "fn", "x"))
		}, "fn/x"},
		{"link in a shared folder", func(root string) {
			os.Symlink("/etc", filepath.Join(root, "_shared", "etc"))
		}, "_shared/etc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range []string{"fn/index.ts", "other/index.ts", "_shared/util.ts"} {
				os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755)
				os.WriteFile(filepath.Join(root, f), []byte(""), 0o644)
			}
			c.setup(root)
			_, err := Discover(root, Options{MaxWorkers: 1, Timeout: 1})
			if c.bad == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), filepath.Join(root, c.bad)+":") {
				t.Fatalf("err = %v, want one naming %s", err, c.bad)
			}
			if _, err := Discover(root, Options{MaxWorkers: 1, Timeout: 1, AllowOutsideSymlinks: true}); err != nil {
				t.Fatalf("with --allow-outside-symlinks: %v", err)
			}
		})
	}
}
