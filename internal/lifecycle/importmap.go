package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"edgeway.dev/edgeway/internal/config"
)

// importMapNameLen is how many hex digits of the content hash name a
// generated import map file: unique enough within one runtime folder.
const importMapNameLen = 16

// importMap is the file Deno reads with --import-map.
type importMap struct {
	Imports map[string]string            `json:"imports"`
	Scopes  map[string]map[string]string `json:"scopes,omitempty"`
}

// ImportMapJSON is the import map a function runs (and is type-checked)
// with: its own map (fn.Deps) over generated entries giving every module of
// the shared folders a bare specifier. On a conflict the user's entry wins,
// including a user prefix ("_shared/") over the generated entries under it.
// The output is deterministic, so equal maps hash equal.
func ImportMapJSON(layout *config.Layout, fn *config.Function) ([]byte, error) {
	m := importMap{Imports: make(map[string]string, len(layout.SharedImports)+len(fn.Deps.Imports)), Scopes: fn.Deps.Scopes}
	for k, v := range layout.SharedImports {
		if !userMaps(fn.Deps.Imports, k) {
			m.Imports[k] = v
		}
	}
	for k, v := range fn.Deps.Imports {
		m.Imports[k] = v
	}
	out, err := json.Marshal(m) // map keys come out sorted
	if err != nil {
		return nil, fmt.Errorf("function %s: import map: %w", fn.Name, err)
	}
	return out, nil
}

// userMaps reports whether the user's imports already decide specifier.
func userMaps(imports map[string]string, specifier string) bool {
	if _, ok := imports[specifier]; ok {
		return true
	}
	for k := range imports {
		if strings.HasSuffix(k, "/") && strings.HasPrefix(specifier, k) {
			return true
		}
	}
	return false
}

// mappedReadPaths lists the local files and folders the user's map points
// to outside the folders a worker already reads: Deno checks read access
// for modules imported after startup (the bootstrap imports the entry
// dynamically), so these must be granted.
func mappedReadPaths(deps config.Deps, readable []string) []string {
	seen := map[string]bool{}
	add := func(addr string) {
		u, err := url.Parse(addr)
		if err != nil || u.Scheme != "file" || u.Path == "" {
			return
		}
		p := filepath.Clean(filepath.FromSlash(u.Path))
		for _, dir := range readable {
			if p == dir || strings.HasPrefix(p, dir+string(filepath.Separator)) {
				return
			}
		}
		seen[p] = true
	}
	for _, v := range deps.Imports {
		add(v)
	}
	for _, scope := range deps.Scopes {
		for _, v := range scope {
			add(v)
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// DependencyFlags are the flags that make Deno resolve modules as the
// function's config says: --config with its deno.json (for compilerOptions,
// nodeModulesDir and the like) or --no-config, the generated import map
// (which replaces the config's own imports, as --import-map does), and
// --lock with an existing lock file or --no-lock, so Deno never creates one
// in the user's folder.
func DependencyFlags(deps config.Deps, importMapPath string) []string {
	var args []string
	if deps.Config != "" {
		args = append(args, "--config", deps.Config)
	} else {
		args = append(args, "--no-config")
	}
	args = append(args, "--import-map", importMapPath)
	if deps.Lock != "" {
		args = append(args, "--lock="+deps.Lock)
	} else {
		args = append(args, "--no-lock")
	}
	return args
}

// writeImportMap stores content in dir under a name derived from it, so
// workers of every version of a function find their own map, and returns
// its path. Concurrent writers of the same content are safe: each renames
// a complete file into place.
func writeImportMap(dir string, content []byte) (string, error) {
	sum := sha256.Sum256(content)
	path := filepath.Join(dir, "importmap-"+hex.EncodeToString(sum[:])[:importMapNameLen]+".json")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	f, err := os.CreateTemp(dir, "importmap-*.tmp")
	if err != nil {
		return "", fmt.Errorf("write import map: %w", err)
	}
	_, err = f.Write(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write import map: %w", err)
	}
	return path, nil
}
