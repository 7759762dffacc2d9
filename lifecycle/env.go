package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"edgeway/config"
	"edgeway/secure"
)

// supabaseVars always pass from the gateway's environment when set, even
// when --env-passthrough narrows it.
var supabaseVars = []string{"SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_DB_URL"}

// gatewaySecretVars are edgeway's own secrets: never passed to functions.
var gatewaySecretVars = []string{"JWT_SECRET", "SUPABASE_JWT_SECRET"}

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
// by --env-passthrough), <functions>/.env, each --env-file, --env, and
// <function>/.env. Errors name the file and line.
func buildEnvs(opts config.Options, layout *config.Layout, environ []string) (map[string]functionEnv, error) {
	base := map[string]string{}
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
		if len(pass) > 0 && !pass[k] && !contains(supabaseVars, k) {
			continue
		}
		base[k] = v
	}
	if opts.Dev {
		setDefault(base, "SUPABASE_ANON_KEY", secure.DevAnonKey)
		setDefault(base, "SUPABASE_SERVICE_ROLE_KEY", secure.DevServiceRoleKey)
	}
	if err := loadEnvFile(base, filepath.Join(layout.Root, ".env"), false); err != nil {
		return nil, err
	}
	for _, f := range opts.EnvFiles {
		if err := loadEnvFile(base, f, true); err != nil {
			return nil, err
		}
	}
	for _, kv := range opts.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("flag --env: want KEY=VALUE, got %q", kv)
		}
		base[k] = v
	}
	out := make(map[string]functionEnv, len(layout.Functions))
	for _, fn := range layout.Functions {
		env := make(map[string]string, len(base))
		for k, v := range base {
			env[k] = v
		}
		if err := loadEnvFile(env, filepath.Join(fn.Dir, ".env"), false); err != nil {
			return nil, err
		}
		fe := functionEnv{vars: flatten(env)}
		fe.vars = append(fe.vars, workerRuntimeEnv...)
		if opts.MaskSecrets {
			fe.masker = secure.NewMasker(env, opts.JWTSecret, opts.InternalKey)
		}
		out[fn.Name] = fe
	}
	return out, nil
}

// loadEnvFile applies a .env file; a missing optional file is fine.
func loadEnvFile(env map[string]string, path string, required bool) error {
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
		env[v.Key] = v.Value
	}
	return nil
}

func setDefault(env map[string]string, k, v string) {
	if _, ok := env[k]; !ok {
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
