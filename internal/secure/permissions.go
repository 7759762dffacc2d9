package secure

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Built-in permission profiles.
const (
	ProfileNone       = "none"       // no permissions beyond the worker's own files and socket
	ProfileStrict     = "strict"     // --allow-net
	ProfileStandard   = "standard"   // --allow-net --allow-env
	ProfilePermissive = "permissive" // --allow-all
	DefaultProfile    = ProfileStandard
)

// PermissionSet is one parsed profile: a name and its validated Deno flags.
type PermissionSet struct {
	Name  string
	Flags []string
}

// Profiles are the built-in and custom permission profiles by name. Build
// it with ParseProfiles; it is read-only afterwards and safe for concurrent
// use.
type Profiles map[string]PermissionSet

func builtinProfiles() Profiles {
	return Profiles{
		ProfileNone:       {Name: ProfileNone, Flags: nil},
		ProfileStrict:     {Name: ProfileStrict, Flags: []string{"--allow-net"}},
		ProfileStandard:   {Name: ProfileStandard, Flags: []string{"--allow-net", "--allow-env"}},
		ProfilePermissive: {Name: ProfilePermissive, Flags: []string{"--allow-all"}},
	}
}

// ParseProfiles returns the built-in profiles plus custom ones, each given
// as "name=flag,flag" (for example "db=--allow-net=db:5432,--allow-env";
// "name=" grants nothing). A custom profile may not redefine a built-in or
// another custom one. Flags must be --allow-<perm> or --deny-<perm>, scoped
// or not, for a permission Deno knows. A comma inside a flag's list
// continues that list unless the next item starts with "--"; list items may
// not be empty.
func ParseProfiles(custom []string) (Profiles, error) {
	p := builtinProfiles()
	for _, entry := range custom {
		name, spec, ok := strings.Cut(entry, "=")
		name = strings.TrimSpace(name)
		if !ok || !validProfileName(name) {
			return nil, fmt.Errorf("permission profile %q: want name=flag,flag with a name of letters, digits, - and _", entry)
		}
		if _, dup := p[name]; dup {
			return nil, fmt.Errorf("permission profile %q is already defined", name)
		}
		flags, err := splitProfileFlags(spec)
		if err != nil {
			return nil, fmt.Errorf("permission profile %q: %w", name, err)
		}
		p[name] = PermissionSet{Name: name, Flags: flags}
	}
	return p, nil
}

// splitProfileFlags splits "--allow-net=a,b,--allow-env" into
// ["--allow-net=a,b", "--allow-env"] and validates each flag.
func splitProfileFlags(spec string) ([]string, error) {
	var flags []string
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "" && strings.TrimSpace(spec) == "":
			continue
		case strings.HasPrefix(part, "--") || len(flags) == 0:
			flags = append(flags, part)
		default:
			flags[len(flags)-1] += "," + part
		}
	}
	for _, f := range flags {
		if err := validateFlag(f); err != nil {
			return nil, err
		}
	}
	return flags, nil
}

func validProfileName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Resolve turns function.json's "permissions" into Deno flags: nothing
// means DefaultProfile, one entry that is not a flag names a profile, and
// otherwise every entry must be a flag. The result is a fresh slice.
func (p Profiles) Resolve(nameOrFlags []string) ([]string, error) {
	switch {
	case len(nameOrFlags) == 0:
		return slices.Clone(p[DefaultProfile].Flags), nil
	case len(nameOrFlags) == 1 && !strings.HasPrefix(nameOrFlags[0], "-"):
		set, ok := p[nameOrFlags[0]]
		if !ok {
			return nil, fmt.Errorf("unknown permission profile %q (known: %s)", nameOrFlags[0], strings.Join(p.Names(), ", "))
		}
		return slices.Clone(set.Flags), nil
	}
	for _, f := range nameOrFlags {
		if err := validateFlag(f); err != nil {
			return nil, fmt.Errorf("permissions: %w", err)
		}
	}
	return slices.Clone(nameOrFlags), nil
}

// Names returns the profile names, sorted.
func (p Profiles) Names() []string {
	names := make([]string, 0, len(p))
	for name := range p {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Deno's permissions (deno run --help, Deno 2). "all" has no deny form.
var denoPermissions = []string{"read", "write", "net", "env", "sys", "run", "ffi", "import"}

// validateFlag accepts --allow-<perm>[=list], --deny-<perm>[=list] and
// --allow-all. Unknown permissions are refused so a typo cannot silently
// drop a grant or a denial.
func validateFlag(f string) error {
	kind, rest, ok := strings.Cut(strings.TrimPrefix(f, "--"), "-")
	if !strings.HasPrefix(f, "--") || !ok || (kind != "allow" && kind != "deny") {
		return fmt.Errorf("flag %q: want --allow-<permission> or --deny-<permission>", f)
	}
	perm, list, scoped := strings.Cut(rest, "=")
	switch {
	case perm == "all" && kind == "allow":
		if scoped {
			return fmt.Errorf("flag %q: --allow-all takes no list", f)
		}
		return nil
	case !slices.Contains(denoPermissions, perm):
		return fmt.Errorf("flag %q: unknown permission %q (known: %s)", f, perm, strings.Join(denoPermissions, ", "))
	case scoped && slices.Contains(strings.Split(list, ","), ""):
		return fmt.Errorf("flag %q: empty list item", f)
	}
	return nil
}
