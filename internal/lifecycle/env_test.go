package lifecycle

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/config"
)

func TestBuildEnvsSupabaseAndRuntimeVariables(t *testing.T) {
	root := t.TempDir()
	fnDir := filepath.Join(root, "f")
	if err := os.MkdirAll(fnDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, ".env"), []byte("DENO_DIR=/elsewhere\nA=1\n"), 0o644)
	os.WriteFile(filepath.Join(fnDir, ".env"), []byte("DENO_SERVE_ADDRESS=tcp:0.0.0.0:80\n"), 0o644)
	layout := &config.Layout{Root: root, Functions: []config.Function{{Name: "f", Dir: fnDir}}}
	environ := []string{"DENO_DIR=/cache", "DENO_SERVE_ADDRESS=tcp:1.2.3.4:5", "SUPABASE_URL=http://env", "EDGEWAY_PORT=1"}
	tests := []struct {
		name     string
		opts     config.Options
		want     []string // KEY=VALUE that must be present
		absent   []string // keys that must not be present
		warnings int
	}{
		{"production", config.Options{},
			[]string{"DENO_DIR=/cache", "A=1", "SUPABASE_URL=http://env", "SB_REGION=local"},
			[]string{"DENO_SERVE_ADDRESS", "SUPABASE_DB_URL", "SUPABASE_ANON_KEY", "EDGEWAY_PORT"}, 3},
		{"dev", config.Options{Dev: true},
			[]string{"SUPABASE_URL=http://env", "SUPABASE_DB_URL=" + devSupabaseDBURL, "SUPABASE_ANON_KEY=" + "eyJ"},
			[]string{"DENO_SERVE_ADDRESS"}, 3},
		{"flags", config.Options{Dev: true, SupabaseURL: "https://x.supabase.co", SupabaseDBURL: "postgresql://db", Region: "eu"},
			[]string{"SUPABASE_URL=https://x.supabase.co", "SUPABASE_DB_URL=postgresql://db", "SB_REGION=eu"}, nil, 3},
		{"passthrough keeps gateway-only variables", config.Options{EnvPassthrough: []string{"X"}},
			[]string{"DENO_DIR=/cache", "SUPABASE_URL=http://env"}, []string{"DENO_SERVE_ADDRESS"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			envs, warnings, err := resolveEnvs(tt.opts, layout, environ)
			if err != nil {
				t.Fatal(err)
			}
			vars := envs["f"].vars
			for _, w := range tt.want {
				if !slices.ContainsFunc(vars, func(kv string) bool { return strings.HasPrefix(kv, w) }) {
					t.Errorf("missing %s in %v", w, vars)
				}
			}
			for _, k := range tt.absent {
				if slices.ContainsFunc(vars, func(kv string) bool { return strings.HasPrefix(kv, k+"=") }) {
					t.Errorf("%s passed: %v", k, vars)
				}
			}
			if len(warnings) != tt.warnings {
				t.Errorf("warnings = %q, want %d", warnings, tt.warnings)
			}
		})
	}
}
