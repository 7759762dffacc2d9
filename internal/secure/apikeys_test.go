package secure

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func keyLine(name, key, claims string) string {
	l := `{"name":"` + name + `","sha256":"` + HashAPIKey(key) + `"`
	if claims != "" {
		l += `,"claims":` + claims
	}
	return l + "}\n"
}

func TestParseAPIKeysRefusesMalformedLines(t *testing.T) {
	good := keyLine("ci", "k1", "")
	for _, c := range []struct{ name, file, want string }{
		{"not JSON", "# c\n\nnope\n", "keys:3: not a JSON object"},
		{"array", "[1]\n", "keys:1: not a JSON object"},
		{"null", "null\n", "keys:1: not a JSON object"},
		{"unknown member", `{"name":"a","sha256":"` + HashAPIKey("x") + `","key":"x"}` + "\n", `keys:1: unknown member "key"`},
		{"member case", `{"NAME":"a","sha256":"` + HashAPIKey("x") + `"}` + "\n", `keys:1: unknown member "NAME"`},
		{"no name", `{"sha256":"` + HashAPIKey("x") + `"}` + "\n", "keys:1: name: want a non-empty string"},
		{"empty name", `{"name":"","sha256":"` + HashAPIKey("x") + `"}` + "\n", "keys:1: name: want"},
		{"name not string", `{"name":1,"sha256":"` + HashAPIKey("x") + `"}` + "\n", "keys:1: name: want"},
		{"no hash", `{"name":"a"}` + "\n", `keys:1: key "a": sha256: want`},
		{"plain key as hash", `{"name":"a","sha256":"secret"}` + "\n", `keys:1: key "a": sha256: want`},
		{"hash not hex", `{"name":"a","sha256":"` + strings.Repeat("g", 64) + `"}` + "\n", `keys:1: key "a": sha256: want`},
		{"claims not object", `{"name":"a","sha256":"` + HashAPIKey("x") + `","claims":[1]}` + "\n", `keys:1: key "a": claims: want a JSON object`},
		{"claims null", `{"name":"a","sha256":"` + HashAPIKey("x") + `","claims":null}` + "\n", `keys:1: key "a": claims: want a JSON object`},
		{"sub not string", keyLine("a", "x", `{"sub":1}`), `keys:1: key "a": claims: sub: want a string`},
		{"claims too large", keyLine("a", "x", `{"big":"`+strings.Repeat("x", MaxAPIKeyClaims)+`"}`), `keys:1: key "a": claims:`},
		{"duplicate name", good + keyLine("ci", "k2", ""), `keys:2: name "ci" already used on line 1`},
		{"duplicate key", good + keyLine("other", "k1", ""), "keys:2: same key hash as line 1"},
		{"line too long", good + strings.Repeat(" ", MaxAPIKeyLine+1) + "\n", "keys:2: line longer than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseAPIKeys(strings.NewReader(c.file), "keys")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestAPIKeysVerify(t *testing.T) {
	file := "# keys of the test\n" + keyLine("ci", "key-ci", "") + "\n" +
		keyLine("svc", "key-svc", `{"role":"service_role","n":[1, 2]}`) +
		keyLine("alias", "key-alias", `{"sub":"user-7"}`) +
		`{"name":"upper","sha256":"` + strings.ToUpper(HashAPIKey("key-upper")) + `"}` + "\n"
	k, err := ParseAPIKeys(strings.NewReader(file), "keys")
	if err != nil {
		t.Fatal(err)
	}
	if k.Len() != 4 {
		t.Fatalf("Len = %d", k.Len())
	}
	for _, c := range []struct {
		key, claims, sub string
		err              error
	}{
		{"key-ci", `{"sub":"ci"}`, "ci", nil},
		{"key-svc", `{"n":[1,2],"role":"service_role","sub":"svc"}`, "svc", nil},
		{"key-alias", `{"sub":"user-7"}`, "user-7", nil},
		{"key-upper", `{"sub":"upper"}`, "upper", nil},
		{"", "", "", ErrMissing},
		{"key-c", "", "", ErrUnknownAPIKey},
		{"key-ci ", "", "", ErrUnknownAPIKey},
		{HashAPIKey("key-ci"), "", "", ErrUnknownAPIKey}, // the stored hash is not a key
		{strings.Repeat("k", MaxAPIKeyLength+1), "", "", ErrUnknownAPIKey},
	} {
		res, err := k.Verify([]byte(c.key), testNow)
		if !errors.Is(err, c.err) {
			t.Fatalf("Verify(%q) err = %v, want %v", c.key, err, c.err)
		}
		if err != nil {
			continue
		}
		js, derr := base64.RawURLEncoding.DecodeString(string(res.ClaimsB64))
		if derr != nil || string(js) != c.claims || string(res.Sub) != c.sub {
			t.Fatalf("Verify(%q) = claims %s (%v), sub %q; want %s, %q", c.key, js, derr, res.Sub, c.claims, c.sub)
		}
	}
}

func TestAPIKeysCredentials(t *testing.T) {
	k := &APIKeys{}
	for _, c := range []struct {
		name    string
		headers [][2]string
		want    string
	}{
		{"apikey header", [][2]string{{"apikey", "a"}}, "a"},
		{"bearer", [][2]string{{"Authorization", "Bearer b"}}, "b"},
		{"apikey wins over bearer", [][2]string{{"Authorization", "Bearer b"}, {"Apikey", "a"}}, "a"},
		{"other scheme", [][2]string{{"Authorization", "Basic b"}}, ""},
		{"empty apikey falls back", [][2]string{{"apikey", ""}, {"Authorization", "Bearer b"}}, "b"},
		{"none", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			for _, h := range c.headers {
				ctx.Request.Header.Set(h[0], h[1])
			}
			if got := string(k.Credentials(&ctx)); got != c.want {
				t.Fatalf("Credentials = %q, want %q", got, c.want)
			}
		})
	}
}

func TestLoadAPIKeysNamesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.jsonl")
	if err := os.WriteFile(path, []byte(keyLine("a", "x", "")+"{\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAPIKeys(path); err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Fatalf("err = %v, want it to name %s:2", err, path)
	}
	if _, err := LoadAPIKeys(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("err = %v", err)
	}
}

func TestAPIKeysVerifyAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	k, err := ParseAPIKeys(strings.NewReader(keyLine("a", "key-a", "")+keyLine("b", "key-b", `{"role":"x"}`)), "keys")
	if err != nil {
		t.Fatal(err)
	}
	key, bad := []byte("key-b"), []byte("key-c")
	if a := testing.AllocsPerRun(100, func() { k.Verify(key, testNow); k.Verify(bad, testNow) }); a != 0 {
		t.Fatalf("Verify allocates %.1f times", a)
	}
}

// FuzzParseAPIKeys: the parser never panics, and what it accepts verifies
// every key it names with claims that are a JSON object.
func FuzzParseAPIKeys(f *testing.F) {
	f.Add(keyLine("ci", "k", ""))
	f.Add(keyLine("svc", "k2", `{"role":"service_role","sub":"x"}`) + "# comment\n\n" + keyLine("b", "k3", `{}`))
	f.Add(`{"name":"a","sha256":"` + HashAPIKey("k") + `","claims":{"sub":"s","sub":"t"}}`)
	f.Add(`{"name":"a","sha256":"` + HashAPIKey("k") + `","name":"b"}`)
	f.Add("{\"name\":\"\\u0000\",\"sha256\":\"" + HashAPIKey("k") + "\"}\r\n")
	f.Add("nope")
	f.Fuzz(func(t *testing.T, file string) {
		k, err := ParseAPIKeys(strings.NewReader(file), "keys")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "keys:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		set := k.set.Load()
		if len(set.hashes) != len(set.results) {
			t.Fatalf("%d hashes, %d results", len(set.hashes), len(set.results))
		}
		for _, r := range set.results {
			js, err := base64.RawURLEncoding.DecodeString(string(r.ClaimsB64))
			var m map[string]any
			if err != nil || json.Unmarshal(js, &m) != nil || m == nil {
				t.Fatalf("claims %q are not a base64url JSON object", r.ClaimsB64)
			}
			if len(r.ClaimsB64) > MaxTokenLength {
				t.Fatalf("claims of %d bytes", len(r.ClaimsB64))
			}
		}
	})
}

// Replace swaps the key set at once: the new keys verify, the old ones no
// longer do, and a result verified before stays intact.
func TestAPIKeysReplace(t *testing.T) {
	k, err := ParseAPIKeys(strings.NewReader(keyLine("old", "k1", "")), "keys")
	if err != nil {
		t.Fatal(err)
	}
	before, err := k.Verify([]byte("k1"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	next, err := ParseAPIKeys(strings.NewReader(keyLine("new", "k2", "")+keyLine("other", "k3", "")), "keys")
	if err != nil {
		t.Fatal(err)
	}
	k.Replace(next)
	if k.Len() != 2 {
		t.Fatalf("Len after Replace = %d, want 2", k.Len())
	}
	if _, err := k.Verify([]byte("k1"), time.Time{}); err != ErrUnknownAPIKey {
		t.Fatalf("old key after Replace: %v, want ErrUnknownAPIKey", err)
	}
	if res, err := k.Verify([]byte("k2"), time.Time{}); err != nil || string(res.Sub) != "new" {
		t.Fatalf("new key after Replace: %v", err)
	}
	if string(before.Sub) != "old" {
		t.Fatalf("a result verified before the Replace changed: sub %q", before.Sub)
	}
	var empty APIKeys
	if _, err := empty.Verify([]byte("k1"), time.Time{}); err != ErrUnknownAPIKey || empty.Len() != 0 {
		t.Fatalf("zero APIKeys: %v, Len %d", err, empty.Len())
	}
}
