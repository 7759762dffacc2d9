package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Deno checks --allow-read against the path as written, not its target: a
// link inside a function folder to /etc makes /etc/passwd readable to the
// function. So a symbolic link inside a function folder must stay inside
// that function's folder or a shared `_` folder, and a link inside a shared
// folder inside the shared folders, unless --allow-outside-symlinks.
//
// "Inside" is decided on resolved paths: a function or shared folder that
// is itself a symlink (allowed, see README "Imports, deno.json and locks")
// is its target, and links in it are checked against that target. A
// dangling link is checked on its target as written. node_modules is not
// checked (Deno fills it and links within it).

// checkSymlinks returns an error naming the first link that leaves its
// function's folder or the shared folders.
func checkSymlinks(l *Layout) error {
	shared := make([]string, 0, len(l.Shared))
	for _, s := range l.Shared {
		shared = append(shared, Resolved(s))
	}
	for _, s := range l.Shared {
		if err := checkLinksUnder(s, shared, "shared folder"); err != nil {
			return err
		}
	}
	for _, f := range l.Functions {
		allowed := append([]string{Resolved(f.Dir)}, shared...)
		if err := checkLinksUnder(f.Dir, allowed, "function "+f.Name+"'s folder"); err != nil {
			return err
		}
	}
	return nil
}

// checkLinksUnder walks dir (its target when dir is a link) and checks
// every symbolic link against the allowed roots.
func checkLinksUnder(dir string, allowed []string, what string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil // a missing folder has no links; discovery reports it
	}
	return filepath.WalkDir(real, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && path != real && skippedDirs[d.Name()] {
			return filepath.SkipDir
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			link, rerr := os.Readlink(path)
			if rerr != nil {
				return nil
			}
			if !filepath.IsAbs(link) {
				link = filepath.Join(filepath.Dir(path), link)
			}
			target = filepath.Clean(link)
		}
		for _, root := range allowed {
			if within(target, root) {
				return nil
			}
		}
		shown := path
		if rel, err := filepath.Rel(real, path); err == nil {
			shown = filepath.Join(dir, rel)
		}
		return fmt.Errorf("%s: symbolic link to %s leaves %s (functions could read through it; --allow-outside-symlinks allows it)", shown, target, what)
	})
}

// within reports whether path is root or below it.
func within(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+string(filepath.Separator))
}
