package lifecycle

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"edgeway.dev/edgeway/internal/config"
)

// A node:http server moved onto the worker's Unix socket (DENO_SERVE_ADDRESS)
// answers server.address() with null in Deno 2.9, and frameworks read the
// port from it as soon as they listen: fastify logs it, @hono/node-server
// hands it to its callback, both throw at boot. The bootstrap can make
// address() answer with the port the function asked for, but only by
// loading node:http itself, which costs a plain Deno.serve worker about
// 20 ms of boot. So the gateway asks for it (EDGEWAY_NODE_SERVER=1) only
// for functions that can reach Node's modules at all: an npm or node:
// specifier in their code, shared code or import map, or a package.json.

// nodeMarkers are the byte strings whose presence in a source file means
// the function may load Node's modules.
var nodeMarkers = [][]byte{[]byte("npm:"), []byte("node:"), []byte("require(")}

// maxScannedSource bounds the source files read when the folder is loaded;
// a larger one (a bundle, generated code) counts as a yes unread.
const maxScannedSource = 4 << 20

// sourceExts are the files scanned for nodeMarkers.
var sourceExts = map[string]bool{".ts": true, ".tsx": true, ".mts": true, ".cts": true, ".js": true, ".jsx": true, ".mjs": true, ".cjs": true}

// mayServeNode reports whether fn may start a node:http server: see above.
// An unreadable file counts as a yes (the cost is boot time, never
// correctness).
func mayServeNode(fn *config.Function, shared []string) bool {
	if fn.Deps.PackageJSON != "" {
		return true
	}
	for _, target := range fn.Deps.Imports {
		if strings.HasPrefix(target, "npm:") || strings.HasPrefix(target, "node:") {
			return true
		}
	}
	for _, scopes := range fn.Deps.Scopes {
		for _, target := range scopes {
			if strings.HasPrefix(target, "npm:") || strings.HasPrefix(target, "node:") {
				return true
			}
		}
	}
	for _, dir := range append([]string{fn.Dir}, shared...) {
		if sourcesMention(dir) {
			return true
		}
	}
	return false
}

// sourcesMention reports whether a source file under dir (node_modules and
// hidden folders skipped) holds one of nodeMarkers.
func sourcesMention(dir string) bool {
	found := false
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			found = path != dir || !os.IsNotExist(err)
			return filepath.SkipAll
		}
		if d.IsDir() {
			if path != dir && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !sourceExts[filepath.Ext(path)] {
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > maxScannedSource {
			found = true // too large to read here (a bundle): assume it may
			return filepath.SkipAll
		}
		src, err := os.ReadFile(path)
		if err != nil {
			found = true
			return filepath.SkipAll
		}
		for _, m := range nodeMarkers {
			if bytes.Contains(src, m) {
				found = true
				return filepath.SkipAll
			}
		}
		return nil
	})
	return found
}
