package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"strings"
)

// npmName is an npm package name, scoped or not.
var npmName = regexp.MustCompile(`^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$`)

// withPackageJSON adds the dependencies of a package.json in the
// function's folder to d's imports, as Deno would resolve them from the
// package.json: "hono": "^4" maps "hono" to npm:hono@^4 and "hono/" to
// npm:/hono@^4/. Workers run with --no-config (a config discovered from
// their folder could come from anywhere above it) and without a
// node_modules folder, so the mapping goes through the import map instead.
// Entries of the function's deno.json or import map win. A dependency
// that is not a registry version (file:, git, workspace:, a URL) is an
// error naming the file and the field.
func withPackageJSON(d Deps, fnDir string) (Deps, error) {
	path := filepath.Join(fnDir, "package.json")
	if !isFile(path) {
		return d, nil
	}
	raw, err := readJSONCObject(path)
	if err != nil {
		return Deps{}, err
	}
	imports := maps.Clone(d.Imports)
	if imports == nil {
		imports = map[string]string{}
	}
	for _, field := range []string{"dependencies", "devDependencies", "optionalDependencies"} {
		v, ok := raw[field]
		if !ok {
			continue
		}
		var deps map[string]string
		if json.Unmarshal(v, &deps) != nil {
			return Deps{}, fmt.Errorf("%s: field %q: want an object of package name to version, got %s", path, field, jsonKind(v))
		}
		for name, version := range deps {
			target, err := npmTarget(name, version)
			if err != nil {
				return Deps{}, fmt.Errorf("%s: field \"%s.%s\": %w", path, field, name, err)
			}
			if _, ok := imports[name]; !ok {
				imports[name] = "npm:" + target
			}
			if _, ok := imports[name+"/"]; !ok {
				imports[name+"/"] = "npm:/" + target + "/"
			}
		}
	}
	d.Imports = imports
	d.PackageJSON = path
	if d.Lock == "" && d.Config == "" {
		if lock := filepath.Join(fnDir, "deno.lock"); isFile(lock) {
			d.Lock = lock
		}
	}
	return d, nil
}

// npmTarget is the npm: specifier body for a package.json dependency:
// name@version, or the aliased package of "npm:other@version".
func npmTarget(name, version string) (string, error) {
	if !npmName.MatchString(name) {
		return "", fmt.Errorf("%q is not an npm package name", name)
	}
	version = strings.TrimSpace(version)
	if alias, ok := strings.CutPrefix(version, "npm:"); ok {
		return alias, nil
	}
	if version == "" {
		version = "*"
	}
	if strings.ContainsAny(version, ":/#") {
		return "", fmt.Errorf("version %q: only npm registry versions and ranges are supported (no file:, link:, workspace:, git or URL dependencies)", version)
	}
	return name + "@" + version, nil
}
