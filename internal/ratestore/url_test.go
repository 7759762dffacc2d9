package ratestore

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		wantErr bool
		addr    string
		db      int
		tls     bool
	}{
		{url: "redis://127.0.0.1:6379/0", addr: "127.0.0.1:6379"},
		{url: "redis://redis:6379/3", addr: "redis:6379", db: 3},
		{url: "redis://user:pw@redis.internal:6380/1", addr: "redis.internal:6380", db: 1},
		{url: "rediss://:pw@redis.example.com:6380/0", addr: "redis.example.com:6380", tls: true},
		{url: "redis://redis", addr: "redis:6379"},
		{url: "http://redis:6379", wantErr: true},
		{url: "unix:///tmp/redis.sock", wantErr: true},
		{url: "redis://:6379/0", wantErr: true},
		{url: "redis://u:pw@redis:6379/notadb", wantErr: true},
		{url: "redis://u:pw@redis:port/0", wantErr: true},
		{url: "redis://u:pw@redis:6379/0\x7f", wantErr: true},
		{url: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			o, err := ParseURL(tt.url)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error for %q", tt.url)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Fatalf("error quotes the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Addr != tt.addr || o.DB != tt.db || (o.TLSConfig != nil) != tt.tls {
				t.Fatalf("addr %q db %d tls %v", o.Addr, o.DB, o.TLSConfig != nil)
			}
		})
	}
}

func TestRedactedAndMask(t *testing.T) {
	const url = "redis://app:p%40ss@redis:6379/0"
	if got := Redacted(url); got != "redis://app:xxxxx@redis:6379/0" {
		t.Fatalf("Redacted = %q", got)
	}
	if got := Mask(url, "auth p@ss failed, p%40ss"); strings.Contains(got, "p@ss") || strings.Contains(got, "p%40ss") {
		t.Fatalf("Mask left the password: %q", got)
	}
	if got := Redacted("redis://redis:6379/0"); got != "redis://redis:6379/0" {
		t.Fatalf("Redacted without a password = %q", got)
	}
	for raw, want := range map[string]string{
		"redis://h:1/:secret@x":           "redis://h:1/…",
		"rediss://u@h:1/2?dial_timeout=1": "rediss://u@h:1/2?…",
	} {
		if got := Redacted(raw); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", raw, got, want)
		}
	}
}

// FuzzParseURL: whatever the URL, an error never quotes its password.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"redis://u:secretpw@h:1/0", "rediss://:secretpw@h:x/0", "redis://u:secretpw@:1/a", "redis://u:secretpw@h:1/0?dial_timeout=x", "redis://u:secretpw@[::1:1/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, err := ParseURL(raw)
		if err == nil {
			return
		}
		pw, ok := passwordOf(raw)
		if ok && len(pw) >= 4 && strings.Contains(err.Error(), pw) {
			t.Fatalf("error %q quotes the password %q", err, pw)
		}
	})
}

// passwordOf finds the userinfo password by hand, without net/url, so a
// URL net/url refuses still has its password checked.
func passwordOf(raw string) (string, bool) {
	rest, ok := strings.CutPrefix(raw, "redis://")
	if !ok {
		if rest, ok = strings.CutPrefix(raw, "rediss://"); !ok {
			return "", false
		}
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return "", false
	}
	_, pw, ok := strings.Cut(rest[:at], ":")
	return pw, ok
}
