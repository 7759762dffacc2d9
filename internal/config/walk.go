package config

import (
	"io/fs"
	"path/filepath"
)

// skippedDirs are never walked: Deno fills node_modules from the config
// and lock (which are watched instead), and it can hold thousands of files.
var skippedDirs = map[string]bool{"node_modules": true}

// WalkFiles calls fn for every file under dir with its real path and its
// slash-separated path relative to dir. A symlinked dir is followed
// (filepath.WalkDir does not descend into a symlinked root), and so are
// symlinks to files; symlinked folders further down are not, so a cycle
// cannot trap the walk. A missing dir walks nothing.
func WalkFiles(dir string, fn func(real, rel string)) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return
	}
	filepath.WalkDir(real, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if path != real && skippedDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		file := path
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(path)
			if err != nil || !isFile(target) {
				return nil
			}
			file = target
		} else if !d.Type().IsRegular() {
			return nil
		}
		if rel, err := filepath.Rel(real, path); err == nil {
			fn(file, filepath.ToSlash(rel))
		}
		return nil
	})
}

// Resolved is path with every symlink resolved, or path itself when it
// cannot be (it does not exist yet).
func Resolved(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}
