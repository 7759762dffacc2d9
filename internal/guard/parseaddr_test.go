package guard

import (
	"net/netip"
	"strings"
	"testing"
)

// addrCases are parsed by both parseAddr and netip.ParseAddr, which must
// agree.
var addrCases = []string{
	"0.0.0.0", "1.2.3.4", "255.255.255.255", "203.0.113.7",
	"256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1..2.3",
	".1.2.3", "1.2.3.", "1.2.3.4 ", "1.2.3.-4", "1.2.3.4:80", "1234.1.1.1",
	"::", "::1", "1::", "1::2", "2001:db8::1", "2001:DB8::A",
	"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
	"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "1:2:3:4:5:6::7:8",
	"1:2:3:4::5:6:7:8", ":::", "1:::2", "1::2::3", ":1", "1:", "1::2:",
	"12345::", "0000:0000::", "g::", "::ffff:1.2.3.4", "::1.2.3.4",
	"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1:2:3:4:5:1.2.3.4",
	"::1.2.3.4.5", "::1.2.3", "::ffff:01.2.3.4", "::1234.1.1.1",
	"1::1.2.3.4", "1:2:3:4:5::1.2.3.4", "1:2:3:4:5:6::1.2.3.4",
	"[::1]", "[::1]:80", "", " ", ",", "unknown", "a", "a.b.c.d", "::g",
}

func TestParseAddrMatchesNetip(t *testing.T) {
	t.Parallel()
	for _, s := range addrCases {
		checkParseAddr(t, s)
	}
}

func checkParseAddr(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, "%") {
		return // zones are rejected on purpose
	}
	want, err := netip.ParseAddr(s)
	got, ok := parseAddr([]byte(s))
	if ok != (err == nil) {
		t.Fatalf("parseAddr(%q) ok = %v, netip error = %v", s, ok, err)
	}
	if ok && got != want {
		t.Fatalf("parseAddr(%q) = %v, netip = %v", s, got, want)
	}
}

func TestParseAddrRejectsZones(t *testing.T) {
	t.Parallel()
	if _, ok := parseAddr([]byte("fe80::1%eth0")); ok {
		t.Fatal("zone accepted")
	}
}

func FuzzParseAddr(f *testing.F) {
	for _, s := range addrCases {
		f.Add(s)
	}
	f.Fuzz(checkParseAddr)
}

func FuzzClientIP(f *testing.F) {
	f.Add("203.0.113.7", "1.2.3.4, 203.0.113.7, 10.0.0.2")
	f.Add("10.0.0.1", "spoofed, ::ffff:10.0.0.3,,")
	trusted := mustTrusted(f, testTrusted)
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r, err := netip.ParseAddr(remote)
		if err != nil {
			return
		}
		got := ClientIP(r, []byte(xff), trusted)
		// The answer is the remote or an address from the header.
		if got != r.Unmap() && !strings.Contains(xff, ".") && !strings.Contains(xff, ":") {
			t.Fatalf("ClientIP(%v, %q) = %v: not from its inputs", r, xff, got)
		}
		if got.Is4In6() {
			t.Fatalf("ClientIP(%v, %q) = %v: not unmapped", r, xff, got)
		}
	})
}
