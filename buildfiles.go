package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"edgeway.dev/edgeway/internal/config"
)

// sourceExts are module files: they are in the bundle, not copied.
var sourceExts = map[string]bool{".ts": true, ".tsx": true, ".mts": true, ".cts": true, ".js": true, ".jsx": true, ".mjs": true, ".cjs": true}

// configFiles decide how the function builds or is configured: they are
// applied at build time (function.json goes into the manifest) and never
// shipped.
var configFiles = map[string]bool{"deno.json": true, "deno.jsonc": true, "import_map.json": true, "deno.lock": true, "package.json": true, "function.json": true}

// runtimeFiles lists the files of fn's folder its code may read at run time
// (a sibling index.html, a JSON file read through import.meta.url), by path
// relative to the folder: everything but module sources, config files,
// hidden files and folders (.env holds secrets) and node_modules; plus
// config.toml's static_files inside the folder. A static file outside the
// function's folder is an error: the bundle could not find it.
func runtimeFiles(fn *config.Function) (map[string]string, error) {
	out := map[string]string{}
	config.WalkFiles(fn.Dir, func(real, rel string) {
		for _, seg := range strings.Split(rel, "/") {
			if strings.HasPrefix(seg, ".") {
				return
			}
		}
		if sourceExts[filepath.Ext(rel)] || configFiles[rel] || strings.HasSuffix(rel, ".d.ts") {
			return
		}
		out[rel] = real
	})
	for _, sf := range fn.StaticFiles {
		rel, err := filepath.Rel(fn.Dir, sf)
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("function %s: static file %s is outside the function's folder %s: a build cannot ship it (move it into the folder)", fn.Name, sf, fn.Dir)
		}
		st, err := os.Stat(sf)
		if err != nil {
			return nil, fmt.Errorf("function %s: static file: %w", fn.Name, err)
		}
		if st.IsDir() {
			config.WalkFiles(sf, func(real, r string) { out[filepath.ToSlash(filepath.Join(rel, r))] = real })
			continue
		}
		out[filepath.ToSlash(rel)] = sf
	}
	return out, nil
}

// functionSettings is fn's function.json with config.toml merged in: the
// resolved auth ("auth": false when verify_jwt = false or
// --public-functions made it public). Keys come out sorted.
func functionSettings(fn *config.Function) (json.RawMessage, error) {
	settings := map[string]any{}
	path := filepath.Join(fn.Dir, "function.json")
	if data, err := os.ReadFile(path); err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&settings); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		delete(settings, "$schema")
	}
	if fn.Config.Public {
		settings["auth"] = false
	}
	return json.Marshal(settings)
}

// envReads are the ways code reads an environment variable by a literal
// name.
var envReads = []*regexp.Regexp{
	regexp.MustCompile(`Deno\.env\.get\(\s*["'\x60]([A-Za-z_][A-Za-z0-9_]*)["'\x60]\s*\)`),
	regexp.MustCompile(`Deno\.env\.has\(\s*["'\x60]([A-Za-z_][A-Za-z0-9_]*)["'\x60]\s*\)`),
	regexp.MustCompile(`process\.env\.([A-Za-z_][A-Za-z0-9_]*)`),
	regexp.MustCompile(`process\.env\[\s*["'\x60]([A-Za-z_][A-Za-z0-9_]*)["'\x60]\s*\]`),
}

// envNames lists the variables fn's own code (its folder and the shared
// folders, not npm packages) reads by a literal name.
func envNames(fn *config.Function, layout *config.Layout) []string {
	seen := map[string]bool{}
	scan := func(real, rel string) {
		if !sourceExts[filepath.Ext(rel)] {
			return
		}
		data, err := os.ReadFile(real)
		if err != nil {
			return
		}
		for _, re := range envReads {
			for _, m := range re.FindAllSubmatch(data, -1) {
				seen[string(m[1])] = true
			}
		}
	}
	for _, dir := range append([]string{fn.Dir}, layout.Shared...) {
		config.WalkFiles(dir, scan)
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
