package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Deps says how a function's imports resolve: the Deno config or import
// map it uses and the lock file beside it.
type Deps struct {
	Config  string // deno.json or deno.jsonc given to Deno with --config; "" runs with --no-config
	MapFile string // the file Imports and Scopes come from; "" when there is none
	Lock    string // existing lock file given with --lock; "" runs with --no-lock
	// PackageJSON is the function's package.json whose dependencies are in
	// Imports; "" when there is none.
	PackageJSON string
	// Imports and Scopes are the user's import map with every relative
	// specifier, address and scope made an absolute URL, so the map can be
	// written anywhere and still mean the same.
	Imports map[string]string
	Scopes  map[string]map[string]string
}

// Files lists the files Deps was read from: a change in any of them can
// change how the function's modules resolve.
func (d Deps) Files() []string {
	var out []string
	for _, p := range []string{d.Config, d.MapFile, d.Lock, d.PackageJSON} {
		if p != "" && (len(out) == 0 || out[len(out)-1] != p) {
			out = append(out, p)
		}
	}
	return out
}

// depFileNames are looked for in a function's folder, then in the
// functions folder, in this order.
var depFileNames = []string{"deno.json", "deno.jsonc", "import_map.json"}

// isDenoConfig tells a Deno config (given to Deno with --config) from a
// plain import map, by name as Deno and the Supabase CLI do.
func isDenoConfig(path string) bool {
	base := filepath.Base(path)
	return base == "deno.json" || base == "deno.jsonc"
}

// depsLoader reads dependency files once per scan: the functions folder's
// files are shared by every function without one of its own.
type depsLoader struct {
	cache map[string]Deps
}

// resolve picks a function's config or import map, most specific first:
// deno.json, deno.jsonc or import_map.json in its folder, then the same in
// the functions folder, then tomlMap (config.toml's import_map; "" if
// unset). No file at all gives an empty Deps. A package.json in the
// function's folder adds its dependencies (see withPackageJSON).
func (l *depsLoader) resolve(fnDir, root, tomlMap string) (Deps, error) {
	d, err := l.resolveMap(fnDir, root, tomlMap)
	if err != nil {
		return Deps{}, err
	}
	return withPackageJSON(d, fnDir)
}

func (l *depsLoader) resolveMap(fnDir, root, tomlMap string) (Deps, error) {
	for _, dir := range []string{fnDir, root} {
		for _, name := range depFileNames {
			if p := filepath.Join(dir, name); isFile(p) {
				return l.load(p)
			}
		}
	}
	if tomlMap != "" {
		return l.load(tomlMap)
	}
	return Deps{}, nil
}

func (l *depsLoader) load(path string) (Deps, error) {
	if d, ok := l.cache[path]; ok {
		return d, nil
	}
	d, err := loadDeps(path)
	if err != nil {
		return Deps{}, err
	}
	if l.cache == nil {
		l.cache = map[string]Deps{}
	}
	l.cache[path] = d
	return d, nil
}

// loadDeps reads a deno.json(c) or an import map. Errors name the file and
// the field.
func loadDeps(path string) (Deps, error) {
	raw, err := readJSONCObject(path)
	if err != nil {
		return Deps{}, err
	}
	d := Deps{MapFile: path}
	if d.Imports, d.Scopes, err = parseImportMap(raw, FileURL(path)); err != nil {
		return Deps{}, fmt.Errorf("%s: %w", path, err)
	}
	lock := filepath.Join(filepath.Dir(path), "deno.lock")
	if isDenoConfig(path) {
		d.Config = path
		if err := checkConfigFields(raw); err != nil {
			return Deps{}, fmt.Errorf("%s: %w", path, err)
		}
		_, hasImports := raw["imports"]
		_, hasScopes := raw["scopes"]
		if v, ok := raw["importMap"]; ok && !hasImports && !hasScopes {
			// Deno ignores "importMap" when the config has its own map.
			if d.MapFile, err = configRelativeFile(path, "importMap", v); err != nil {
				return Deps{}, err
			}
			target, err := readJSONCObject(d.MapFile)
			if err != nil {
				return Deps{}, err
			}
			if d.Imports, d.Scopes, err = parseImportMap(target, FileURL(d.MapFile)); err != nil {
				return Deps{}, fmt.Errorf("%s: %w", d.MapFile, err)
			}
		}
		if v, ok := raw["lock"]; ok {
			if lock, err = configLock(path, v, lock); err != nil {
				return Deps{}, err
			}
		}
	}
	if lock != "" && isFile(lock) {
		d.Lock = lock
	}
	return d, nil
}

func readJSONCObject(path string) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := decodeJSONC(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%s: want a JSON object, got null", path)
	}
	return raw, nil
}

// checkConfigFields validates the deno.json fields Deno reads itself from
// --config, so a mistake is a startup error rather than a boot failure.
func checkConfigFields(raw map[string]json.RawMessage) error {
	if v, ok := raw["compilerOptions"]; ok {
		var o map[string]json.RawMessage
		if json.Unmarshal(v, &o) != nil || o == nil {
			return fmt.Errorf("field \"compilerOptions\": want an object, got %s", jsonKind(v))
		}
	}
	if v, ok := raw["nodeModulesDir"]; ok {
		var mode string
		var legacy bool
		switch {
		case json.Unmarshal(v, &mode) == nil:
			if mode != "auto" && mode != "manual" && mode != "none" {
				return fmt.Errorf("field \"nodeModulesDir\": want \"auto\", \"manual\" or \"none\", got %q", mode)
			}
		case json.Unmarshal(v, &legacy) != nil || string(v) == "null":
			return fmt.Errorf("field \"nodeModulesDir\": want \"auto\", \"manual\" or \"none\", got %s", jsonKind(v))
		}
	}
	return nil
}

// configLock applies deno.json's "lock" field: false turns the lock off,
// a path (or {"path": ...}) moves it; def is the lock beside the config.
func configLock(configPath string, v json.RawMessage, def string) (string, error) {
	var on bool
	var path string
	var obj struct {
		Path *string `json:"path"`
	}
	switch {
	case json.Unmarshal(v, &on) == nil && string(v) != "null":
		if !on {
			return "", nil
		}
		return def, nil
	case json.Unmarshal(v, &path) == nil && string(v) != "null":
		return filepath.Join(filepath.Dir(configPath), path), nil
	case json.Unmarshal(v, &obj) == nil && string(v) != "null":
		if obj.Path == nil {
			return def, nil
		}
		return filepath.Join(filepath.Dir(configPath), *obj.Path), nil
	}
	return "", fmt.Errorf("%s: field \"lock\": want true, false, a path or {\"path\": ...}, got %s", configPath, jsonKind(v))
}

// configRelativeFile reads a path field of a deno.json: a local file,
// relative to the config's folder, that must exist.
func configRelativeFile(configPath, field string, v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%s: field %q: want a path, got %s", configPath, field, jsonKind(v))
	}
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && u.Scheme != "file" {
		return "", fmt.Errorf("%s: field %q: only a local file is supported, got %q", configPath, field, s)
	}
	p := strings.TrimPrefix(s, "file://")
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(configPath), p)
	}
	if !isFile(p) {
		return "", fmt.Errorf("%s: field %q: no such file %s", configPath, field, p)
	}
	return p, nil
}

// parseImportMap reads "imports" and "scopes" and makes every relative
// specifier, address and scope absolute against base, following the
// import map rules: keys and addresses starting with /, ./ or ../ are
// relative, other keys are bare specifiers, and scopes are always URLs.
func parseImportMap(raw map[string]json.RawMessage, base *url.URL) (map[string]string, map[string]map[string]string, error) {
	var imports map[string]string
	var scopes map[string]map[string]string
	var err error
	if v, ok := raw["imports"]; ok {
		if imports, err = parseSpecifierMap(v, base, "imports"); err != nil {
			return nil, nil, err
		}
	}
	if v, ok := raw["scopes"]; ok {
		var rs map[string]json.RawMessage
		if json.Unmarshal(v, &rs) != nil || rs == nil {
			return nil, nil, fmt.Errorf("field \"scopes\": want an object of scope to imports, got %s", jsonKind(v))
		}
		scopes = make(map[string]map[string]string, len(rs))
		for scope, sv := range rs {
			m, err := parseSpecifierMap(sv, base, "scopes."+scope)
			if err != nil {
				return nil, nil, err
			}
			key := scope
			if !isAbsoluteURL(scope) {
				if key, err = resolveURL(base, scope); err != nil {
					return nil, nil, fmt.Errorf("field \"scopes\": scope %q: %w", scope, err)
				}
			}
			scopes[key] = m
		}
	}
	return imports, scopes, nil
}

func parseSpecifierMap(v json.RawMessage, base *url.URL, field string) (map[string]string, error) {
	var rm map[string]json.RawMessage
	if json.Unmarshal(v, &rm) != nil || rm == nil {
		return nil, fmt.Errorf("field %q: want an object of specifier to address, got %s", field, jsonKind(v))
	}
	out := make(map[string]string, len(rm))
	for key, av := range rm {
		var addr string
		if json.Unmarshal(av, &addr) != nil {
			return nil, fmt.Errorf("field %q: %q: want a string address, got %s", field, key, jsonKind(av))
		}
		spec, err := resolveIfRelative(base, key)
		if err != nil {
			return nil, fmt.Errorf("field %q: specifier %q: %w", field, key, err)
		}
		if addr, err = resolveIfRelative(base, addr); err != nil {
			return nil, fmt.Errorf("field %q: %q: address: %w", field, key, err)
		}
		out[spec] = addr
	}
	return out, nil
}

// resolveIfRelative makes a relative specifier or address absolute and
// leaves bare specifiers and URLs as they are.
func resolveIfRelative(base *url.URL, s string) (string, error) {
	if !isRelativeURL(s) {
		return s, nil
	}
	return resolveURL(base, s)
}

func isRelativeURL(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../")
}

func isAbsoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != ""
}

func resolveURL(base *url.URL, ref string) (string, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	return base.ResolveReference(r).String(), nil
}

// FileURL is the file: URL of an absolute path.
func FileURL(path string) *url.URL {
	return &url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
}

// jsonKind names the JSON type of v for error messages.
func jsonKind(v json.RawMessage) string {
	s := strings.TrimSpace(string(v))
	switch {
	case s == "":
		return "nothing"
	case s == "null":
		return "null"
	case s == "true" || s == "false":
		return "a boolean"
	case s[0] == '"':
		return "a string"
	case s[0] == '{':
		return "an object"
	case s[0] == '[':
		return "an array"
	}
	return "a number"
}
