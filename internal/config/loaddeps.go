package config

// LoadDeps reads one deno.json(c) (a config: --config, its imports, its
// lock beside it) or import map file, as a function's own would be read:
// relative specifiers and addresses made absolute. The public worker
// package uses it for the files its caller names.
func LoadDeps(path string) (Deps, error) { return loadDeps(path) }
