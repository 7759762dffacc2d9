package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"edgeway.dev/edgeway/internal/secure"
)

// SIGHUP re-reads --api-keys-file: a new key works and a removed one is
// refused from then on; a file that no longer parses (or, in production,
// has no keys) keeps the keys in force and logs an error naming the file
// and the line.
func TestAPIKeysFileReloadsOnSIGHUP(t *testing.T) {
	oldKey, newKey := randomSecret(t), randomSecret(t)
	keys := apiKeyFile(t, `{"name":"old","sha256":"`+secure.HashAPIKey(oldKey)+`"}`+"\n")
	g := startGateway(t, map[string]string{"private/index.ts": hitFn}, "--auth", "apikey", "--api-keys-file", keys)
	g.WaitLog(func(l logLine) bool { return l.Msg() == "API keys loaded" && l.Int("keys") == 1 })
	status := func(key string) int { return g.Do("GET", "/private", nil, map[string]string{"apikey": key}).Status }
	if st := status(oldKey); st != 200 {
		t.Fatalf("old key before the reload: %d", st)
	}
	if st := status(newKey); st != 401 {
		t.Fatalf("new key before the reload: %d, want 401", st)
	}

	rewrite := func(text string) {
		t.Helper()
		if err := os.WriteFile(keys, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rewrite(`{"name":"new","sha256":"` + secure.HashAPIKey(newKey) + `"}` + "\n")
	g.Signal(syscall.SIGHUP)
	g.WaitLog(func(l logLine) bool { return l.Msg() == "API keys reloaded" && l.Int("keys") == 1 })
	if st := status(newKey); st != 200 {
		t.Fatalf("new key after the reload: %d, want 200", st)
	}
	if st := status(oldKey); st != 401 {
		t.Fatalf("removed key after the reload: %d, want 401", st)
	}

	// A broken second line: nothing of the file is taken.
	rewrite(`{"name":"third","sha256":"` + secure.HashAPIKey(oldKey) + `"}` + "\n" + `{"name":"broken"` + "\n")
	g.Signal(syscall.SIGHUP)
	bad := g.WaitLog(func(l logLine) bool {
		return strings.HasPrefix(l.Msg(), "API key file not reloaded")
	})
	if e := bad.Str("error"); !strings.Contains(e, keys+":2:") || bad.Str("level") != "error" {
		t.Fatalf("reload error %q (level %q), want an error naming %s:2", e, bad.Str("level"), keys)
	}
	if st := status(newKey); st != 200 {
		t.Fatalf("key in force after a failed reload: %d, want 200", st)
	}
	if st := status(oldKey); st != 401 {
		t.Fatalf("key of the rejected file: %d, want 401", st)
	}

	// Production refuses a file without keys, on reload as at startup.
	rewrite("# nothing\n")
	g.Signal(syscall.SIGHUP)
	g.WaitLogCount(func(l logLine) bool { return strings.HasPrefix(l.Msg(), "API key file not reloaded") }, 2)
	if st := status(newKey); st != 200 {
		t.Fatalf("key in force after an empty file: %d, want 200", st)
	}
}
