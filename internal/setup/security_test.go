package setup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/gateway"
	"edgeway.dev/edgeway/internal/secure"

	"github.com/rs/zerolog"
)

func TestBuildSecurityAPIKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("keys.jsonl", `{"name":"ci","sha256":"`+secure.HashAPIKey("k")+`"}`+"\n")
	empty := write("empty.jsonl", "# no keys yet\n")
	bad := write("bad.jsonl", "\n{\"name\":\"ci\"}\n")
	for _, c := range []struct {
		name, auth, file string
		dev              bool
		err              string
	}{
		{"keys", "apikey", good, false, ""},
		{"empty in dev", "apikey", empty, true, ""},
		{"empty in production", "apikey", empty, false, "flag --api-keys-file: " + empty + " has no keys"},
		{"malformed", "apikey", bad, false, bad + ":2: "},
		{"missing file", "apikey", filepath.Join(dir, "nope"), true, "nope"},
		{"no file", "apikey", "", true, "flag --auth apikey: needs --api-keys-file"},
		{"file without apikey", "none", good, false, "flag --api-keys-file: needs --auth apikey"},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := config.Defaults()
			opts.Auth, opts.APIKeysFile, opts.Dev = c.auth, c.file, c.dev
			sec, err := BuildSecurity(&opts, zerolog.Nop())
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := sec.Auth.(*secure.APIKeys); !ok {
				t.Fatalf("Auth = %T", sec.Auth)
			}
		})
	}
	opts := config.Defaults()
	opts.Auth = "none"
	if sec, err := BuildSecurity(&opts, zerolog.Nop()); err != nil || sec.Auth != (gateway.NoAuth{}) {
		t.Fatalf("--auth none: %T, %v", sec.Auth, err)
	}
}
