package secure

import (
	"cmp"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// MinMaskedLength is the shortest value a Masker hides, in bytes. Shorter
// values ("1", "true", "dev") occur everywhere and masking them would mangle
// logs without protecting anything.
const MinMaskedLength = 4

// MaskText replaces each masked value.
const MaskText = "***"

// secretNameParts mark an environment variable as secret when its name
// contains one of them, in any case.
var secretNameParts = []string{"SECRET", "KEY", "TOKEN", "PASSWORD", "CREDENTIAL", "AUTH", "PRIVATE"}

// Masker hides secret values in log text. It is immutable and safe for
// concurrent use; a nil *Masker masks nothing.
type Masker struct {
	// prefixes is a bit set of the first two bytes of every secret, so the
	// scan rejects most positions with one load.
	prefixes [1 << 16 / 64]uint64
	// byPrefix holds the secrets by their first two bytes, longest first.
	byPrefix map[uint16][]string
}

// NewMasker masks the values of the variables in env whose names contain
// SECRET, KEY, TOKEN, PASSWORD, CREDENTIAL, AUTH or PRIVATE (any case), the
// string members of such a value when it is a JSON object (as in
// SUPABASE_SECRET_KEYS), the password of any value that is a URL with one
// (as in SUPABASE_DB_URL), and extraSecrets. Values shorter than
// MinMaskedLength are left alone.
func NewMasker(env map[string]string, extraSecrets ...string) *Masker {
	secrets := slices.Clone(extraSecrets)
	for name, value := range env {
		secrets = append(secrets, urlPasswords(value)...)
		if isSecretName(name) {
			secrets = append(secrets, value)
			secrets = append(secrets, jsonStrings(value)...)
		}
	}
	m := &Masker{byPrefix: make(map[uint16][]string)}
	for _, s := range secrets {
		if len(s) < MinMaskedLength {
			continue
		}
		p := prefix2(s)
		if !slices.Contains(m.byPrefix[p], s) {
			m.byPrefix[p] = append(m.byPrefix[p], s)
			m.prefixes[p>>6] |= 1 << (p & 63)
		}
	}
	for _, list := range m.byPrefix {
		slices.SortFunc(list, func(a, b string) int {
			return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
		})
	}
	return m
}

func isSecretName(name string) bool {
	upper := strings.ToUpper(name)
	for _, part := range secretNameParts {
		if strings.Contains(upper, part) {
			return true
		}
	}
	return false
}

// urlPasswords returns the passwords in a URL-shaped value, each as
// written and percent-decoded (a log line may print either): the one in
// its userinfo (scheme://user:password@host), found by hand, because
// url.Parse refuses passwords with an unencoded '/', '[' or '#', which
// people paste into SUPABASE_DB_URL; and libpq's password query parameter
// (postgresql://host/db?password=...).
func urlPasswords(value string) []string {
	_, rest, ok := strings.Cut(value, "://")
	if !ok {
		return nil
	}
	var out []string
	add := func(raw string, unescape func(string) (string, error)) {
		if raw == "" {
			return
		}
		out = append(out, raw)
		if dec, err := unescape(raw); err == nil && dec != raw {
			out = append(out, dec)
		}
	}
	// The userinfo ends at the last '@' before the query; a password may
	// hold '@', '/' or '?' itself, so the query is only cut off when an
	// '@' comes before it.
	head := rest
	if q := strings.IndexByte(rest, '?'); q >= 0 && strings.LastIndexByte(rest[:q], '@') >= 0 {
		head = rest[:q]
	}
	at := strings.LastIndexByte(head, '@')
	if at >= 0 {
		if _, pw, ok := strings.Cut(head[:at], ":"); ok {
			add(pw, url.PathUnescape)
		}
	}
	if q := strings.IndexByte(rest[at+1:], '?'); q >= 0 {
		query, _, _ := strings.Cut(rest[at+1+q+1:], "#")
		for _, kv := range strings.Split(query, "&") {
			if k, v, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, "password") {
				add(v, url.QueryUnescape)
			}
		}
	}
	return out
}

// jsonStrings returns the string members of a JSON object, or nil.
func jsonStrings(value string) []string {
	if !strings.HasPrefix(strings.TrimSpace(value), "{") {
		return nil
	}
	var obj map[string]any
	if json.Unmarshal([]byte(value), &obj) != nil {
		return nil
	}
	var out []string
	for _, v := range obj {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func prefix2(s string) uint16 { return uint16(s[0])<<8 | uint16(s[1]) }

// Mask returns s with every occurrence of a secret replaced by MaskText.
// Overlapping or adjacent occurrences become one MaskText, so no part of
// any secret survives. When nothing matches, s is returned as is and
// nothing is allocated.
func (m *Masker) Mask(s string) string {
	if m == nil || len(m.byPrefix) == 0 {
		return s
	}
	var b strings.Builder
	done := 0            // s[:done] is in b, or needs no change
	start, end := -1, -1 // the run of secret bytes being covered
	for i := 0; i+1 < len(s); i++ {
		p := prefix2(s[i:])
		if m.prefixes[p>>6]&(1<<(p&63)) == 0 {
			continue
		}
		n := m.longestAt(s[i:], p)
		if n == 0 {
			continue
		}
		if i <= end {
			end = max(end, i+n)
			continue
		}
		if start >= 0 {
			b.WriteString(s[done:start])
			b.WriteString(MaskText)
			done = end
		} else {
			b.Grow(len(s))
		}
		start, end = i, i+n
	}
	if start < 0 {
		return s
	}
	b.WriteString(s[done:start])
	b.WriteString(MaskText)
	b.WriteString(s[end:])
	return b.String()
}

// longestAt returns the length of the longest secret s starts with, or 0.
func (m *Masker) longestAt(s string, p uint16) int {
	for _, secret := range m.byPrefix[p] {
		if strings.HasPrefix(s, secret) {
			return len(secret)
		}
	}
	return 0
}
