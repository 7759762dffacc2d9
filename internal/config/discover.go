package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// namePattern is Supabase's rule for function names.
var namePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// ValidName reports whether name can be a function name.
func ValidName(name string) bool { return namePattern.MatchString(name) }

// indexFiles are the entrypoints looked for in a function folder, in order.
var indexFiles = []string{"index.ts", "index.tsx", "index.js", "index.mjs"}

// Function is one routable function found on disk.
type Function struct {
	Name       string
	Dir        string // absolute folder of the function
	Entrypoint string // absolute path of the module to run
	Config     FunctionConfig
	Deps       Deps // its Deno config or import map and lock file
	// StaticFiles are the files config.toml's static_files match: the
	// function may read them.
	StaticFiles []string
}

// Layout is the result of scanning a functions folder.
type Layout struct {
	Root   string   // absolute functions folder
	Shared []string // absolute `_*` folders, readable by every function
	// SharedImports maps a bare specifier for every module in the shared
	// folders ("_shared/cors.ts") to its file URL.
	SharedImports map[string]string
	Functions     []Function
	// Warnings name what the scan ignored: config.toml sections and keys
	// edgeway does not apply, folders that are not functions.
	Warnings []string
	// Secrets are config.toml's [edge_runtime.secrets], env(NAME) resolved:
	// every function's environment, above the gateway's.
	Secrets []SecretVar
	// Artifact describes the verified artifact the functions come from;
	// nil for a functions folder.
	Artifact *ArtifactInfo
}

// Lookup returns the function called name, or nil.
func (l *Layout) Lookup(name string) *Function {
	for i := range l.Functions {
		if l.Functions[i].Name == name {
			return &l.Functions[i]
		}
	}
	return nil
}

type supabaseConfig struct {
	Functions map[string]supabaseFunction `toml:"functions"`
}

type supabaseFunction struct {
	Enabled     *bool    `toml:"enabled"`
	VerifyJWT   *bool    `toml:"verify_jwt"`
	ImportMap   string   `toml:"import_map"`
	Entrypoint  string   `toml:"entrypoint"`
	StaticFiles []string `toml:"static_files"`
}

// Discover scans dir for functions and shared folders and reads every
// function.json and the Supabase config.toml next to dir.
//
// With o.Prebuilt set, or a version deployed in o.StateDir, the functions
// come from that verified artifact instead and dir is not read (see
// DiscoverPrebuilt).
func Discover(dir string, o Options) (*Layout, error) {
	if o.StateDir != "" {
		deployed, err := DeployedArtifact(o.StateDir)
		if err != nil {
			return nil, err
		}
		if deployed != "" {
			o.Prebuilt = deployed
		}
	}
	if o.Prebuilt != "" {
		return DiscoverPrebuilt(o)
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("functions folder %s: %w", dir, err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("functions folder %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("functions folder %s: not a directory", dir)
	}
	sb, sbPath, err := readSupabaseConfig(filepath.Join(filepath.Dir(root), "config.toml"))
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("functions folder %s: %w", dir, err)
	}
	l := &Layout{Root: root}
	base := DefaultFunctionConfig(o)
	deps := &depsLoader{}
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		full := filepath.Join(root, name)
		if !isDir(full) {
			continue
		}
		if strings.HasPrefix(name, "_") {
			l.Shared = append(l.Shared, full)
			continue
		}
		if !ValidName(name) {
			if w := folderWarning(root, name, "the name must match "+namePattern.String()); w != "" {
				l.Warnings = append(l.Warnings, w)
			}
			continue
		}
		sf := sb.Functions[name]
		if sf.Enabled != nil && !*sf.Enabled {
			seen[name] = true
			continue
		}
		tomlMap, err := supabaseImportMap(sbPath, name, sf)
		if err != nil {
			return nil, err
		}
		entry := ""
		if sf.Entrypoint != "" {
			entry = resolveEntrypoint(sbPath, sf.Entrypoint)
			if !isFile(entry) {
				return nil, fmt.Errorf("%s: field \"functions.%s.entrypoint\": no such file %s", sbPath, name, entry)
			}
		} else {
			entry = findIndex(full)
		}
		if entry == "" {
			if w := folderWarning(root, name, "no index file ("+strings.Join(indexFiles, ", ")+")"); w != "" {
				l.Warnings = append(l.Warnings, w)
			}
			continue
		}
		f, err := newFunction(name, full, entry, base, deps, root, tomlMap)
		if err != nil {
			return nil, err
		}
		if sf.VerifyJWT != nil && !*sf.VerifyJWT {
			f.Config.Public = true
		}
		l.Functions = append(l.Functions, f)
		seen[name] = true
	}
	// Functions declared only in config.toml, with an entrypoint elsewhere.
	for name, sf := range sb.Functions {
		if seen[name] || sf.Entrypoint == "" || (sf.Enabled != nil && !*sf.Enabled) {
			continue
		}
		if !ValidName(name) {
			return nil, fmt.Errorf("%s: section [functions.%s]: name must match %s", sbPath, name, namePattern)
		}
		entry := resolveEntrypoint(sbPath, sf.Entrypoint)
		if !isFile(entry) {
			return nil, fmt.Errorf("%s: field \"functions.%s.entrypoint\": no such file %s", sbPath, name, entry)
		}
		tomlMap, err := supabaseImportMap(sbPath, name, sf)
		if err != nil {
			return nil, err
		}
		f, err := newFunction(name, filepath.Dir(entry), entry, base, deps, root, tomlMap)
		if err != nil {
			return nil, err
		}
		if sf.VerifyJWT != nil && !*sf.VerifyJWT {
			f.Config.Public = true
		}
		l.Functions = append(l.Functions, f)
	}
	if err := applyOverrides(l, o); err != nil {
		return nil, err
	}
	if !o.AllowOutsideSymlinks {
		if err := checkSymlinks(l); err != nil {
			return nil, err
		}
	}
	if err := applySupabaseExtras(l, sb, sbPath, lookupEnv); err != nil {
		return nil, err
	}
	l.SharedImports = sharedImports(l.Shared)
	sort.Slice(l.Functions, func(i, j int) bool { return l.Functions[i].Name < l.Functions[j].Name })
	return l, nil
}

func newFunction(name, dir, entry string, base FunctionConfig, deps *depsLoader, root, tomlMap string) (Function, error) {
	cfg, err := LoadFunctionConfig(filepath.Join(dir, "function.json"), base)
	if err != nil {
		return Function{}, err
	}
	d, err := deps.resolve(dir, root, tomlMap)
	if err != nil {
		return Function{}, err
	}
	return Function{Name: name, Dir: dir, Entrypoint: entry, Config: cfg, Deps: d}, nil
}

// supabaseImportMap resolves [functions.<name>] import_map, relative to
// config.toml's folder like the entrypoint; "" when unset.
func supabaseImportMap(sbPath, name string, sf supabaseFunction) (string, error) {
	if sf.ImportMap == "" {
		return "", nil
	}
	p := resolveEntrypoint(sbPath, sf.ImportMap)
	if !isFile(p) {
		return "", fmt.Errorf("%s: field \"functions.%s.import_map\": no such file %s", sbPath, name, p)
	}
	return p, nil
}

func readSupabaseConfig(path string) (supabaseConfig, string, error) {
	var c supabaseConfig
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, path, nil
	}
	if err != nil {
		return c, path, fmt.Errorf("%s: %w", path, err)
	}
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return c, path, fmt.Errorf("%s: %w", path, err)
	}
	for _, key := range md.Undecoded() {
		if len(key) >= 3 && key[0] == "functions" {
			return c, path, fmt.Errorf("%s: unknown field %q", path, key.String())
		}
	}
	return c, path, nil
}

// resolveEntrypoint resolves an entrypoint relative to config.toml's folder,
// as the Supabase CLI does.
func resolveEntrypoint(configPath, entry string) string {
	entry = strings.TrimPrefix(entry, "file://")
	if filepath.IsAbs(entry) {
		return filepath.Clean(entry)
	}
	return filepath.Join(filepath.Dir(configPath), entry)
}

func findIndex(dir string) string {
	for _, f := range indexFiles {
		p := filepath.Join(dir, f)
		if isFile(p) {
			return p
		}
	}
	return ""
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// applyOverrides applies --public-functions and --function-permissions,
// and relaxes wall-clock limits under --inspect.
func applyOverrides(l *Layout, o Options) error {
	for _, item := range o.PublicFunctions {
		for _, name := range strings.Split(item, ",") {
			name = strings.TrimSpace(name)
			f := l.Lookup(name)
			if f == nil {
				return fmt.Errorf("flag --public-functions: no function %q in %s", name, l.Root)
			}
			f.Config.Public = true
		}
	}
	for _, item := range o.FunctionPermissions {
		name, profile, ok := strings.Cut(item, "=")
		if !ok || profile == "" {
			return fmt.Errorf("flag --function-permissions: want name=profile, got %q", item)
		}
		f := l.Lookup(name)
		if f == nil {
			return fmt.Errorf("flag --function-permissions: no function %q in %s", name, l.Root)
		}
		f.Config.Permissions = []string{profile}
		f.Config.PermissionsFrom = "flag --function-permissions"
	}
	for i := range l.Functions {
		applyInspect(&l.Functions[i].Config, o)
	}
	return nil
}
