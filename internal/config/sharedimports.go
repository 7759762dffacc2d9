package config

import (
	"path"
	"path/filepath"
	"slices"
)

// sharedModuleExts are the files of a `_*` folder that get a bare
// specifier in the generated import map.
var sharedModuleExts = []string{".ts", ".tsx", ".js", ".jsx", ".mjs", ".json"}

// sharedImports maps "_shared/cors.ts" to the file URL of every module in
// the shared folders. The URL keeps the path inside the functions folder
// (not a symlink's target), so `import "_shared/cors.ts"` and
// `import "../_shared/cors.ts"` load the same module instance.
func sharedImports(shared []string) map[string]string {
	m := map[string]string{}
	for _, dir := range shared {
		name := filepath.Base(dir)
		WalkFiles(dir, func(_, rel string) {
			if slices.Contains(sharedModuleExts, path.Ext(rel)) {
				m[name+"/"+rel] = FileURL(filepath.Join(dir, filepath.FromSlash(rel))).String()
			}
		})
	}
	return m
}
