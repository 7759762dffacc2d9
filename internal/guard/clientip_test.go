package guard

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func mustTrusted(t testing.TB, list string) []netip.Prefix {
	t.Helper()
	p, err := ParseTrustedProxies(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testTrusted is a typical deployment: nginx on the LAN and loopback, a
// load balancer range in IPv6.
const testTrusted = "10.0.0.0/8, 127.0.0.1, ::1, 2001:db8::/32"

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := mustTrusted(t, testTrusted)
	tests := []struct {
		name    string
		remote  string
		xff     string
		trusted []netip.Prefix
		want    string
	}{
		{"direct client, no header", "203.0.113.7", "", trusted, "203.0.113.7"},
		{"direct client spoofing XFF is ignored", "203.0.113.7", "1.2.3.4", trusted, "203.0.113.7"},
		{"direct client spoofing a trusted address", "203.0.113.7", "10.0.0.1", trusted, "203.0.113.7"},
		{"no trusted proxies configured", "10.0.0.1", "203.0.113.7", nil, "10.0.0.1"},
		{"trusted proxy, no header", "10.0.0.1", "", trusted, "10.0.0.1"},
		{"behind nginx", "10.0.0.1", "203.0.113.7", trusted, "203.0.113.7"},
		{"behind nginx, client sent a forged entry", "10.0.0.1", "1.2.3.4, 203.0.113.7", trusted, "203.0.113.7"},
		{"behind nginx, client sent garbage", "10.0.0.1", "spoofed, 203.0.113.7", trusted, "203.0.113.7"},
		{"behind nginx, client forged a trusted address", "10.0.0.1", "10.9.9.9, 203.0.113.7", trusted, "203.0.113.7"},
		{"two trusted hops", "127.0.0.1", "1.2.3.4, 203.0.113.7, 10.0.0.2", trusted, "203.0.113.7"},
		{"every hop trusted: left-most", "10.0.0.1", "10.0.0.5, 10.0.0.6", trusted, "10.0.0.5"},
		{"malformed right-most entry: the proxy", "10.0.0.1", "203.0.113.7, garbage", trusted, "10.0.0.1"},
		{"malformed after a trusted hop: that hop", "10.0.0.1", "203.0.113.7, bad, 10.0.0.2", trusted, "10.0.0.2"},
		{"port is malformed", "10.0.0.1", "203.0.113.7:443", trusted, "10.0.0.1"},
		{"bracketed IPv6 is malformed", "10.0.0.1", "[2001:db9::1]", trusted, "10.0.0.1"},
		{"bracketed IPv6 with port is malformed", "10.0.0.1", "[2001:db9::1]:443", trusted, "10.0.0.1"},
		{"zone is malformed", "10.0.0.1", "fe80::1%eth0", trusted, "10.0.0.1"},
		{"obfuscated identifier is malformed", "10.0.0.1", "unknown", trusted, "10.0.0.1"},
		{"IPv6 client", "::1", "2001:db9::1", trusted, "2001:db9::1"},
		{"IPv6 trusted hop", "::1", "2001:db9::1, 2001:db8::5", trusted, "2001:db9::1"},
		{"IPv4-mapped entry is unmapped", "10.0.0.1", "::ffff:203.0.113.7", trusted, "203.0.113.7"},
		{"IPv4-mapped trusted entry is skipped", "10.0.0.1", "203.0.113.7, ::ffff:10.0.0.2", trusted, "203.0.113.7"},
		{"IPv4-mapped trusted remote", "::ffff:10.0.0.1", "203.0.113.7", trusted, "203.0.113.7"},
		{"IPv4-mapped untrusted remote is unmapped", "::ffff:203.0.113.9", "1.2.3.4", trusted, "203.0.113.9"},
		{"spaces, tabs and empty entries", "10.0.0.1", " ,1.2.3.4 ,\t203.0.113.7\t, ,", trusted, "203.0.113.7"},
		{"only empty entries", "10.0.0.1", " , ,", trusted, "10.0.0.1"},
		{"joined headers", "10.0.0.1", "1.2.3.4,203.0.113.7, 10.0.0.9", trusted, "203.0.113.7"},
		{"no remote address", "", "203.0.113.7", trusted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var remote netip.Addr
			if tt.remote != "" {
				remote = netip.MustParseAddr(tt.remote)
			}
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got := ClientIP(remote, []byte(tt.xff), tt.trusted); got != want {
				t.Errorf("ClientIP = %v, want %v", got, want)
			}
			// The same value as one header, or split into one header
			// per entry, must give the same answer.
			if got := ClientIPHeaders(remote, [][]byte{[]byte(tt.xff)}, tt.trusted); got != want {
				t.Errorf("ClientIPHeaders (one header) = %v, want %v", got, want)
			}
			var split [][]byte
			for part := range strings.SplitSeq(tt.xff, ",") {
				split = append(split, []byte(part))
			}
			if got := ClientIPHeaders(remote, split, tt.trusted); got != want {
				t.Errorf("ClientIPHeaders (%d headers) = %v, want %v", len(split), got, want)
			}
		})
	}
}

func TestClientIPHeadersOrder(t *testing.T) {
	t.Parallel()
	trusted := mustTrusted(t, testTrusted)
	remote := netip.MustParseAddr("10.0.0.1")
	tests := []struct {
		name    string
		headers []string
		want    string
	}{
		{"client header first, proxy header last", []string{"spoofed", "203.0.113.7"}, "203.0.113.7"},
		{"trusted hop in the last header", []string{"203.0.113.7", "10.0.0.2"}, "203.0.113.7"},
		{"empty last header", []string{"203.0.113.7", ""}, "203.0.113.7"},
		{"no headers", nil, "10.0.0.1"},
	}
	for _, tt := range tests {
		var hs [][]byte
		for _, h := range tt.headers {
			hs = append(hs, []byte(h))
		}
		if got := ClientIPHeaders(remote, hs, trusted); got != netip.MustParseAddr(tt.want) {
			t.Errorf("%s: got %v, want %s", tt.name, got, tt.want)
		}
	}
}

func TestClientIPFromRequest(t *testing.T) {
	t.Parallel()
	trusted := mustTrusted(t, testTrusted)
	var req fasthttp.Request
	req.SetRequestURI("http://localhost/fn")
	req.Header.Add("X-Forwarded-For", "1.2.3.4")
	req.Header.Add("X-Forwarded-For", "203.0.113.7")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 40000}, nil)
	remote := RemoteAddr(&ctx)
	if remote != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("RemoteAddr = %v", remote)
	}
	got := ClientIPHeaders(remote, ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor), trusted)
	if got != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("client = %v, want 203.0.113.7", got)
	}
	ctx.Init(&req, &net.UnixAddr{Name: "/tmp/sock", Net: "unix"}, nil)
	if got := RemoteAddr(&ctx); got.IsValid() {
		t.Fatalf("RemoteAddr of a Unix socket = %v, want the zero Addr", got)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		list    string
		want    string // prefixes joined by ","
		wantErr string // substring; the bad entry is quoted
	}{
		{list: "", want: ""},
		{list: " , ,", want: ""},
		{list: "10.0.0.0/8", want: "10.0.0.0/8"},
		{list: "10.0.0.0/8, 192.168.1.1 ,::1,2001:db8::/32", want: "10.0.0.0/8,192.168.1.1/32,::1/128,2001:db8::/32"},
		{list: "10.1.2.3/8", want: "10.0.0.0/8"},
		{list: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
		{list: "::ffff:192.0.2.1", want: "192.0.2.1/32"},
		{list: "10.0.0.0/8,bogus", wantErr: `"bogus"`},
		{list: "10.0.0.0/33", wantErr: `"10.0.0.0/33"`},
		{list: "fe80::1%eth0", wantErr: `"fe80::1%eth0": zones`},
		{list: "::ffff:0.0.0.0/80", wantErr: `"::ffff:0.0.0.0/80": an IPv4-mapped prefix`},
		{list: "1.2.3.4:80", wantErr: `"1.2.3.4:80"`},
	}
	for _, tt := range tests {
		got, err := ParseTrustedProxies(tt.list)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want one containing %s", tt.list, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.list, err)
			continue
		}
		var b bytes.Buffer
		for i, p := range got {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(p.String())
		}
		if b.String() != tt.want {
			t.Errorf("%q: got %s, want %s", tt.list, b.String(), tt.want)
		}
	}
}
