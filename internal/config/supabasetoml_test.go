package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSupabaseExtras(t *testing.T) {
	env := func(name string) (string, bool) {
		if name == "SET" {
			return "from-env", true
		}
		return "", false
	}
	tests := []struct {
		name     string
		toml     string
		secrets  []SecretVar
		warnings []string
		err      string
	}{
		{"secrets, literal and env()", "[edge_runtime.secrets]\nB = \"env(SET)\"\nA = \"lit\"\nC = \"env(UNSET)\"\nD = \"env(not a name)\"\n",
			[]SecretVar{{"A", "lit"}, {"B", "from-env"}, {"D", "env(not a name)"}}, []string{"UNSET is not set"}, ""},
		{"a secret that is not a string", "[edge_runtime.secrets]\nN = 3\n", nil, nil, "want a string"},
		{"unknown and CLI-only keys", "[edge_runtime]\nenabled = true\nfoo = 1\n", nil,
			[]string{"[edge_runtime] enabled is not applied", "[edge_runtime] foo is not applied by edgeway: unknown key"}, ""},
		{"a section for no function", "[functions.ghost]\nverify_jwt = false\n[functions.off]\nenabled = false\n", nil,
			[]string{"[functions.ghost] names no function"}, ""},
		{"static files that match nothing", "[functions.f]\nstatic_files = [\"./nothing/*.txt\"]\n", nil,
			[]string{"\"./nothing/*.txt\" matches no file"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fns := filepath.Join(dir, "functions")
			os.MkdirAll(filepath.Join(fns, "f"), 0o755)
			os.WriteFile(filepath.Join(fns, "f", "index.ts"), []byte("x"), 0o644)
			path := filepath.Join(dir, "config.toml")
			os.WriteFile(path, []byte(tt.toml), 0o644)
			sb, _, err := readSupabaseConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			l := &Layout{Root: fns, Functions: []Function{{Name: "f", Dir: filepath.Join(fns, "f")}}}
			err = applySupabaseExtras(l, sb, path, env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Secrets) != len(tt.secrets) {
				t.Fatalf("secrets = %v, want %v", l.Secrets, tt.secrets)
			}
			for i := range tt.secrets {
				if l.Secrets[i] != tt.secrets[i] {
					t.Fatalf("secrets = %v, want %v", l.Secrets, tt.secrets)
				}
			}
			if len(l.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings = %q, want %q", l.Warnings, tt.warnings)
			}
			for i, w := range tt.warnings {
				if !strings.Contains(l.Warnings[i], w) {
					t.Errorf("warning %q lacks %q", l.Warnings[i], w)
				}
			}
		})
	}
}
