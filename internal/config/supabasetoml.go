package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// edgeRuntimeKeys are the [edge_runtime] keys of the Supabase CLI: they
// configure its local runtime container, which edgeway replaces (its own
// flags say the same things), so they are reported as not applied.
var edgeRuntimeKeys = map[string]string{
	"enabled":        "edgeway always serves the folder",
	"policy":         "edgeway keeps a pool of workers per function (see --min-workers, --max-workers)",
	"inspector_port": "edgeway has no inspector option yet",
	"deno_version":   "edgeway runs the Deno given with --deno",
}

// envReference is config.toml's syntax for a value read from the
// environment: env(NAME).
var envReference = regexp.MustCompile(`^env\(([A-Za-z_][A-Za-z0-9_]*)\)$`)

// SecretVar is one [edge_runtime.secrets] entry with its value resolved.
type SecretVar struct {
	Key, Value string
}

// edgeRuntimeConfig is the part of config.toml about the edge runtime,
// decoded on its own so that the rest of the file stays the CLI's.
type edgeRuntimeConfig struct {
	EdgeRuntime map[string]any `toml:"edge_runtime"`
}

// applySupabaseExtras reads what config.toml says beyond the functions'
// own settings: [edge_runtime.secrets] (the functions' environment),
// static_files (readable by the function), and reports as warnings the
// [functions.<name>] sections that name no function and the [edge_runtime]
// keys edgeway does not apply. lookupEnv resolves env(NAME) references.
func applySupabaseExtras(l *Layout, sb supabaseConfig, sbPath string, lookupEnv func(string) (string, bool)) error {
	for _, name := range sortedKeys(sb.Functions) {
		sf := sb.Functions[name]
		f := l.Lookup(name)
		if f == nil {
			if sf.Enabled == nil || *sf.Enabled {
				l.Warnings = append(l.Warnings, fmt.Sprintf("%s: section [functions.%s] names no function in %s (no folder with an index file, no entrypoint): its settings apply to nothing", sbPath, name, l.Root))
			}
			continue
		}
		files, err := staticFiles(sbPath, name, sf.StaticFiles)
		if err != nil {
			return err
		}
		f.StaticFiles = files
		for _, pattern := range sf.StaticFiles {
			if !anyMatch(sbPath, pattern, files) {
				l.Warnings = append(l.Warnings, fmt.Sprintf("%s: field \"functions.%s.static_files\": %q matches no file", sbPath, name, pattern))
			}
		}
	}
	if !isFile(sbPath) {
		return nil
	}
	var er edgeRuntimeConfig
	if _, err := toml.DecodeFile(sbPath, &er); err != nil {
		return fmt.Errorf("%s: %w", sbPath, err)
	}
	for _, key := range sortedKeys(er.EdgeRuntime) {
		if key == "secrets" {
			continue
		}
		why, known := edgeRuntimeKeys[key]
		if !known {
			why = "unknown key"
		}
		l.Warnings = append(l.Warnings, fmt.Sprintf("%s: [edge_runtime] %s is not applied by edgeway: %s", sbPath, key, why))
	}
	secrets, ok := er.EdgeRuntime["secrets"].(map[string]any)
	if _, present := er.EdgeRuntime["secrets"]; present && !ok {
		return fmt.Errorf("%s: [edge_runtime.secrets]: want a table of NAME = \"value\"", sbPath)
	}
	for _, key := range sortedKeys(secrets) {
		s, ok := secrets[key].(string)
		if !ok {
			return fmt.Errorf("%s: field \"edge_runtime.secrets.%s\": want a string, got %T", sbPath, key, secrets[key])
		}
		if m := envReference.FindStringSubmatch(s); m != nil {
			v, found := lookupEnv(m[1])
			if !found {
				l.Warnings = append(l.Warnings, fmt.Sprintf("%s: field \"edge_runtime.secrets.%s\": %s is not set in the gateway's environment: the secret is left out", sbPath, key, m[1]))
				continue
			}
			s = v
		}
		l.Secrets = append(l.Secrets, SecretVar{Key: key, Value: s})
	}
	return nil
}

// staticFiles expands a function's static_files globs, relative to
// config.toml's folder as the Supabase CLI does, into the files they match.
func staticFiles(sbPath, name string, patterns []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, pattern := range patterns {
		matches, err := filepath.Glob(resolveEntrypoint(sbPath, pattern))
		if err != nil {
			return nil, fmt.Errorf("%s: field \"functions.%s.static_files\": %q: %w", sbPath, name, pattern, err)
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func anyMatch(sbPath, pattern string, files []string) bool {
	abs := resolveEntrypoint(sbPath, pattern)
	for _, f := range files {
		if ok, _ := filepath.Match(abs, f); ok {
			return true
		}
	}
	return false
}

// folderWarning says why a folder of the functions folder is not served,
// or "" for folders that are not meant to be functions (hidden ones,
// node_modules).
func folderWarning(root, name, why string) string {
	if strings.HasPrefix(name, ".") || skippedDirs[name] {
		return ""
	}
	return fmt.Sprintf("%s: folder %s is not served: %s", root, name, why)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lookupEnv is how Discover resolves env(NAME) in config.toml.
var lookupEnv = os.LookupEnv
