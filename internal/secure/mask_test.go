package secure

import (
	"strings"
	"testing"
)

func TestMask(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"JWT_SECRET":            "s3cr3t-value-123",
		"OPENAI_API_KEY":        "sk-abcdef",
		"github_token":          "ghp_token",
		"DB_PASSWORD":           "hunter22",
		"GOOGLE_CREDENTIALS":    "cred-json",
		"OAUTH_CLIENT":          "oauth-val",
		"PRIVATE_THING":         "priv-val",
		"SHORT_SECRET":          "abc", // below MinMaskedLength
		"PORT":                  "8080",
		"REGION":                "eu-west-1",
		"SUPABASE_DB_URL":       "postgresql://postgres:db-pass-99@db:5432/postgres",
		"SUPABASE_SECRET_KEYS":  `{"default":"sb_secret_XYZ123"}`,
		"OVERLAP_SECRET":        "abcdWXYZ",
		"OVERLAP_SECRET_LONGER": "WXYZ1234",
	}
	m := NewMasker(env, "extra-jwt-secret")
	tests := []struct {
		name, in, want string
	}{
		{"nothing", "GET /hello 200 1.2ms", "GET /hello 200 1.2ms"},
		{"empty", "", ""},
		{"secret name", "secret is s3cr3t-value-123.", "secret is ***."},
		{"key name", "Bearer sk-abcdef", "Bearer ***"},
		{"lower-case name", "token=ghp_token&x=1", "token=***&x=1"},
		{"password, credential, auth, private", "hunter22 cred-json oauth-val priv-val", "*** *** *** ***"},
		{"extra secret", "signed with extra-jwt-secret", "signed with ***"},
		{"short value kept", "abc abc", "abc abc"},
		{"other variables kept", "listening on 8080 in eu-west-1", "listening on 8080 in eu-west-1"},
		{"URL password", "dial postgres:db-pass-99@db failed", "dial postgres:***@db failed"},
		{"whole URL under a plain name kept, password masked", env["SUPABASE_DB_URL"], "postgresql://postgres:***@db:5432/postgres"},
		{"JSON member", "key sb_secret_XYZ123 used", "key *** used"},
		{"whole JSON value", `keys={"default":"sb_secret_XYZ123"}`, "keys=***"},
		{"repeated", "sk-abcdefsk-abcdef sk-abcdef", "*** ***"},
		{"overlapping secrets", "xxabcdWXYZ1234yy", "xx***yy"},
		{"at the very end", "tail sk-abcdef", "tail ***"},
		{"prefix only", "sk-abcde", "sk-abcde"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Mask(tt.in); got != tt.want {
				t.Fatalf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMaskLongestFirst(t *testing.T) {
	t.Parallel()
	m := NewMasker(nil, "abcd", "abcdefgh", "abcdef")
	if got := m.Mask("<abcdefgh>"); got != "<***>" {
		t.Fatalf("Mask = %q, want %q", got, "<***>")
	}
	if got := m.Mask("<abcdefg>"); got != "<***g>" {
		t.Fatalf("Mask = %q, want %q", got, "<***g>")
	}
}

func TestMaskNil(t *testing.T) {
	t.Parallel()
	var m *Masker
	if got := m.Mask("sk-abcdef"); got != "sk-abcdef" {
		t.Fatalf("nil Masker changed the text: %q", got)
	}
	if got := NewMasker(map[string]string{"PORT": "8080"}).Mask("8080"); got != "8080" {
		t.Fatalf("empty Masker changed the text: %q", got)
	}
}

func TestMaskNoMatchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	m := NewMasker(map[string]string{"API_KEY": "sk-abcdef", "JWT_SECRET": "s3cr3t-value"})
	line := strings.Repeat("GET /functions/v1/hello 200 sk-abcde ", 4)
	allocs := testing.AllocsPerRun(1000, func() { _ = m.Mask(line) })
	if allocs != 0 {
		t.Fatalf("Mask allocates %.1f times without a match", allocs)
	}
}

// TestMaskCanary plants unique values and checks that none survives in any
// context around them.
func TestMaskCanary(t *testing.T) {
	t.Parallel()
	canaries := map[string]string{
		"A_SECRET":      "CANARY-7f3a9c1e",
		"B_TOKEN":       "CANARY-0b4d2e8f",
		"C_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nCANARY\n-----END PRIVATE KEY-----",
	}
	m := NewMasker(canaries)
	for _, v := range canaries {
		for _, ctx := range []string{"%s", "x%sx", "%s%s", `{"v":"%s"}`, "\n%s\n"} {
			in := strings.ReplaceAll(ctx, "%s", v)
			if out := m.Mask(in); strings.Contains(out, v) {
				t.Errorf("Mask(%q) = %q leaks the value", in, out)
			}
		}
	}
}

// SUPABASE_DB_URL's password was masked only when url.Parse accepted the
// URL and the log printed it decoded: a percent-encoded password, one with
// an unencoded '/', '[' or '#' (url.Parse refuses those), or one passed as
// libpq's password parameter reached worker logs in clear.
func TestMaskDatabaseURLPasswords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url string
		hidden    []string // must not appear in the masked URL nor in a line printing them
	}{
		{"plain", "postgresql://postgres:s3cretpw@db.x.supabase.co:5432/postgres", []string{"s3cretpw"}},
		{"percent-encoded", "postgresql://postgres:p%40ss%23word@db:5432/postgres", []string{"p%40ss%23word", "p@ss#word"}},
		{"unencoded slash", "postgresql://postgres:pa/ss99@db:5432/postgres", []string{"pa/ss99"}},
		{"unencoded bracket", "postgresql://postgres:pa[ss99@db:5432/postgres", []string{"pa[ss99"}},
		{"unencoded at and hash", "postgresql://postgres:p@ss#99@db:5432/postgres?sslmode=require", []string{"p@ss#99"}},
		{"pooler user", "postgres://postgres.abcdefgh:Pooler-pw-1@aws-0-eu.pooler.supabase.com:6543/postgres", []string{"Pooler-pw-1"}},
		{"query parameter", "postgresql://db:5432/postgres?sslmode=require&password=q%2Bsecret+1", []string{"q%2Bsecret+1", "q+secret 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMasker(map[string]string{"SUPABASE_DB_URL": tt.url})
			for _, line := range append([]string{"connecting to " + tt.url}, tt.hidden...) {
				got := m.Mask(line)
				for _, pw := range tt.hidden {
					if strings.Contains(got, pw) {
						t.Fatalf("Mask(%q) = %q: %q shows", line, got, pw)
					}
				}
			}
			if got := m.Mask("host db port 5432"); got != "host db port 5432" {
				t.Fatalf("unrelated text changed: %q", got)
			}
		})
	}
}

// FuzzURLPasswords checks that no value makes urlPasswords panic, and that
// a password between "://user:" and "@host/" is always among what it
// returns when it holds no '@' or '?' (which would make it ambiguous).
func FuzzURLPasswords(f *testing.F) {
	for _, s := range []string{"s3cretpw", "p%40ss", "pa/ss", "a[b", "x#y", "", "%zz", "a:b"} {
		f.Add("postgresql://", s, "@db:5432/postgres?password="+s)
	}
	f.Fuzz(func(t *testing.T, scheme, pw, tail string) {
		urlPasswords(scheme + pw + tail)
		if pw == "" || strings.ContainsAny(pw, "@?") {
			return
		}
		found := urlPasswords("postgresql://user:" + pw + "@db:5432/postgres")
		for _, got := range found {
			if got == pw {
				return
			}
		}
		t.Fatalf("password %q not found: %q", pw, found)
	})
}
