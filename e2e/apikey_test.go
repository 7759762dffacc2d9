package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/secure"
)

// apiKeyFile writes a key file of hashed keys and returns its path.
func apiKeyFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys.jsonl")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAPIKeyAuthGuardsFunctionsAndForwardsClaims(t *testing.T) {
	ciKey, svcKey := randomSecret(t), randomSecret(t)
	keys := apiKeyFile(t, "# test keys\n"+
		`{"name":"ci","sha256":"`+secure.HashAPIKey(ciKey)+`"}`+"\n"+
		`{"name":"svc","sha256":"`+secure.HashAPIKey(svcKey)+`","claims":{"role":"service_role","sub":"svc-user"}}`+"\n")
	g := startGateway(t, map[string]string{"private/index.ts": hitFn, "open/index.ts": hitFn},
		"--auth", "apikey", "--api-keys-file", keys, "--public-functions", "open")
	g.WaitLog(func(l logLine) bool { return l.Msg() == "API keys loaded" && l.Int("keys") == 2 })

	forged := b64(`{"sub":"admin","role":"service_role"}`)
	// From the apikey header; a forged x-auth-claims is replaced.
	c := claimsSeen(t, g.Do("GET", "/private", nil, map[string]string{"apikey": ciKey, "X-Auth-Claims": forged}))
	if len(c) != 1 || c["sub"] != "ci" {
		t.Errorf("apikey header: claims %v, want {sub: ci}", c)
	}
	// From Authorization: Bearer, as supabase-js sends it too.
	c = claimsSeen(t, g.Do("GET", "/private", nil, bearer(svcKey)))
	if c["sub"] != "svc-user" || c["role"] != "service_role" {
		t.Errorf("bearer: claims %v", c)
	}
	// Refused: never reach the function.
	before := syncHits(t, g, "private", map[string]string{"apikey": ciKey})
	for _, c := range []struct {
		name    string
		header  map[string]string
		message string
	}{
		{"no key", nil, "missing authorization token"},
		{"unknown key", map[string]string{"apikey": randomSecret(t)}, "unknown API key"},
		{"stored hash as key", map[string]string{"apikey": secure.HashAPIKey(ciKey)}, "unknown API key"},
		{"unknown apikey beside a good bearer", map[string]string{"apikey": "nope", "Authorization": "Bearer " + ciKey}, "unknown API key"},
		{"forged claims alone", map[string]string{"X-Auth-Claims": forged}, "missing authorization token"},
		{"key with a suffix", map[string]string{"apikey": ciKey + "x"}, "unknown API key"},
	} {
		r := g.Do("GET", "/private", nil, c.header)
		expectError(t, r, 401, "UNAUTHORIZED")
		if !strings.Contains(string(r.Body), c.message) {
			t.Errorf("%s: body %q, want %q", c.name, r.Body, c.message)
		}
	}
	if after := syncHits(t, g, "private", map[string]string{"apikey": ciKey}); after != before {
		t.Errorf("%d refused requests reached the function", after-before)
	}
	// A public function needs no key and gets no claims.
	if v, ok := seen(t, g.Do("GET", "/open", nil, map[string]string{"X-Auth-Claims": forged}))["x-auth-claims"]; ok {
		t.Errorf("public function got x-auth-claims %v", v)
	}
	// The keys never reach the gateway's log.
	if log := g.logs.text(); strings.Contains(log, ciKey) || strings.Contains(log, svcKey) {
		t.Error("an API key is in the gateway's log")
	}
}

func TestAPIKeyFileRefusedAtStartup(t *testing.T) {
	bin, deno := binPath(t), denoPath(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`})
	empty := apiKeyFile(t, "# nothing yet\n")
	bad := apiKeyFile(t, `{"name":"ci","sha256":"`+secure.HashAPIKey("k")+`"}`+"\n"+`{"name":"plain","sha256":"my-secret-key"}`+"\n")
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"empty file in production", []string{"--auth", "apikey", "--api-keys-file", empty}, []string{"--api-keys-file", empty, "no keys"}},
		{"malformed line", []string{"--auth", "apikey", "--api-keys-file", bad, "--dev"}, []string{bad + ":2:", `"plain"`, "sha256"}},
		{"no file", []string{"--auth", "apikey"}, []string{"--api-keys-file"}},
		{"file without apikey", []string{"--auth", "none", "--api-keys-file", empty}, []string{"--api-keys-file", "--auth apikey"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"serve", "--functions", dir, "--deno", deno, "--port", "0"}, c.args...)...)
			cmd.Env = cleanEnv()
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("start succeeded: %s", out)
			}
			msg := strings.TrimSpace(string(out))
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not name %q", msg, w)
				}
			}
			if strings.Contains(msg, "my-secret-key") && c.name != "malformed line" {
				t.Errorf("error %q repeats a key", msg)
			}
		})
	}
}
