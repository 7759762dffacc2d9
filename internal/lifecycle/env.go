package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/secure"
)

// supabaseVars always pass from the gateway's environment when set, even
// when --env-passthrough narrows it.
var supabaseVars = []string{"SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_DB_URL"}

// gatewaySecretVars are edgeway's own secrets: never passed to functions.
var gatewaySecretVars = []string{"JWT_SECRET", "SUPABASE_JWT_SECRET"}

// Supabase CLI local stack defaults, given to functions in --dev when
// neither the environment nor a flag sets them (the URLs `supabase status`
// prints on the host: the API gateway and the database).
const (
	devSupabaseURL   = "http://127.0.0.1:54321"
	devSupabaseDBURL = "postgresql://postgres:postgres@127.0.0.1:54322/postgres"
)

// workerOwnedVars decide where a worker serves or how its entry is run:
// edgeway sets both for every worker (see workerEnv), so they are dropped
// from every layer, the gateway's environment included. Another
// DENO_SERVE_ADDRESS would move the function's server off the worker's
// socket (every request would fail and the function would answer without
// the gateway in front).
var workerOwnedVars = []string{"DENO_SERVE_ADDRESS", "DENO_AUTO_SERVE"}

// gatewayOnlyVars decide where code is loaded from and how it resolves.
// They pass from the gateway's own environment, which is also what
// `edgeway check` runs Deno with, so workers load what check type-checked
// and warmed; a .env file or --env may not redirect them for one function.
// DENO_DIR is the module and npm cache, NPM_CONFIG_REGISTRY where npm
// packages come from, DENO_NO_PACKAGE_JSON, DENO_CONDITIONS and
// DENO_COMPAT change how imports resolve.
var gatewayOnlyVars = []string{"DENO_DIR", "NPM_CONFIG_REGISTRY", "DENO_NO_PACKAGE_JSON", "DENO_CONDITIONS", "DENO_COMPAT"}

// workerRuntimeEnv is set for every worker after the user's layers: Deno's
// own output stays plain text in the gateway log.
var workerRuntimeEnv = []string{"NO_COLOR=1", "DENO_NO_UPDATE_CHECK=1"}

// functionEnv is a function's resolved environment and the masker for
// its logged output.
type functionEnv struct {
	vars   []string // KEY=VALUE, sorted by key
	masker *secure.Masker
}

// buildEnvs layers each function's environment, lowest first: the
// gateway's environment minus edgeway's own settings and secrets (narrowed
// by --env-passthrough), the Supabase variables (--supabase-url,
// --supabase-db-url, --region, --dev defaults), config.toml's
// [edge_runtime.secrets], <functions>/.env, each --env-file, --env, and
// <function>/.env. Variables that steer the runtime are dropped (see
// workerOwnedVars, gatewayOnlyVars). Errors name the file and line.
func buildEnvs(opts config.Options, layout *config.Layout, environ []string) (map[string]functionEnv, error) {
	envs, _, err := resolveEnvs(opts, layout, environ)
	return envs, err
}

// EnvWarnings lists, one sentence each, the variables that buildEnvs
// drops because they steer the runtime, naming the file, flag or
// environment they came from.
func EnvWarnings(opts config.Options, layout *config.Layout, environ []string) ([]string, error) {
	_, warnings, err := resolveEnvs(opts, layout, environ)
	return warnings, err
}

// envLayer applies variables to env, dropping (with a warning) the ones
// their source may not set.
type envLayer struct {
	env      map[string]string
	warnings *[]string
}

// set applies k=v from the source named from; gatewayEnv says the source
// is the gateway's own environment.
func (l envLayer) set(from, k, v string, gatewayEnv bool) {
	if contains(workerOwnedVars, k) || (!gatewayEnv && contains(gatewayOnlyVars, k)) {
		why := "edgeway sets where workers serve"
		if !gatewayEnv && contains(gatewayOnlyVars, k) {
			why = "it steers where Deno loads code from; set it in the gateway's environment"
		}
		*l.warnings = append(*l.warnings, fmt.Sprintf("%s: variable %s is not passed to functions: %s", from, k, why))
		return
	}
	l.env[k] = v
}

// resolveEnvs is buildEnvs returning the warnings too.
func resolveEnvs(opts config.Options, layout *config.Layout, environ []string) (map[string]functionEnv, []string, error) {
	var warnings []string
	base := map[string]string{}
	layer := envLayer{env: base, warnings: &warnings}
	pass := map[string]bool{}
	for _, item := range opts.EnvPassthrough {
		for _, name := range strings.Split(item, ",") {
			pass[strings.TrimSpace(name)] = true
		}
	}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "EDGEWAY_") || contains(gatewaySecretVars, k) {
			continue
		}
		if (opts.JWTSecret != "" && v == opts.JWTSecret) || (opts.InternalKey != "" && v == opts.InternalKey) {
			continue
		}
		if len(pass) > 0 && !pass[k] && !contains(supabaseVars, k) && !contains(gatewayOnlyVars, k) {
			continue
		}
		layer.set("the gateway's environment", k, v, true)
	}
	supabaseEnv(opts, base)
	for _, sv := range layout.Secrets {
		if (opts.JWTSecret != "" && sv.Value == opts.JWTSecret) || (opts.InternalKey != "" && sv.Value == opts.InternalKey) {
			warnings = append(warnings, fmt.Sprintf("config.toml [edge_runtime.secrets] %s: the value is edgeway's own secret and is not passed to functions", sv.Key))
			continue
		}
		layer.set("config.toml [edge_runtime.secrets]", sv.Key, sv.Value, false)
	}
	if err := loadEnvFile(layer, filepath.Join(layout.Root, ".env"), false); err != nil {
		return nil, nil, err
	}
	for _, f := range opts.EnvFiles {
		if err := loadEnvFile(layer, f, true); err != nil {
			return nil, nil, err
		}
	}
	for _, kv := range opts.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("flag --env: want KEY=VALUE, got %q", kv)
		}
		layer.set("flag --env", k, v, false)
	}
	out := make(map[string]functionEnv, len(layout.Functions))
	for _, fn := range layout.Functions {
		env := make(map[string]string, len(base))
		for k, v := range base {
			env[k] = v
		}
		if err := loadEnvFile(envLayer{env: env, warnings: &warnings}, filepath.Join(fn.Dir, ".env"), false); err != nil {
			return nil, nil, err
		}
		fe := functionEnv{vars: flatten(env)}
		fe.vars = append(fe.vars, workerRuntimeEnv...)
		if opts.MaskSecrets {
			fe.masker = secure.NewMasker(env, opts.JWTSecret, opts.InternalKey)
		}
		out[fn.Name] = fe
	}
	return out, warnings, nil
}

// supabaseEnv sets the variables Supabase gives every function: the
// --supabase-url and --supabase-db-url flags over the gateway's
// environment, the local stack's URLs and keys in --dev when nothing set
// them, and SB_REGION from --region, else the environment, else "local".
func supabaseEnv(opts config.Options, env map[string]string) {
	if opts.SupabaseURL != "" {
		env["SUPABASE_URL"] = opts.SupabaseURL
	}
	if opts.SupabaseDBURL != "" {
		env["SUPABASE_DB_URL"] = opts.SupabaseDBURL
	}
	if opts.Region != "" {
		env["SB_REGION"] = opts.Region
	}
	setDefault(env, "SB_REGION", "local")
	if opts.Dev {
		setDefault(env, "SUPABASE_URL", devSupabaseURL)
		setDefault(env, "SUPABASE_DB_URL", devSupabaseDBURL)
		setDefault(env, "SUPABASE_ANON_KEY", secure.DevAnonKey)
		setDefault(env, "SUPABASE_SERVICE_ROLE_KEY", secure.DevServiceRoleKey)
	}
}

// loadEnvFile applies a .env file; a missing optional file is fine.
func loadEnvFile(layer envLayer, path string, required bool) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return fmt.Errorf("env file %s: %w", path, err)
	}
	vars, err := secure.ParseDotEnv(path, data)
	if err != nil {
		return err
	}
	for _, v := range vars {
		layer.set(fmt.Sprintf("%s:%d", path, v.Line), v.Key, v.Value, false)
	}
	return nil
}

// setDefault sets k unless it has a value: an empty one counts as unset.
func setDefault(env map[string]string, k, v string) {
	if env[k] == "" {
		env[k] = v
	}
}

func flatten(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + env[k]
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
