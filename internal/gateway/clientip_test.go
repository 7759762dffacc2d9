package gateway

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/guard"

	"github.com/valyala/fasthttp"
)

// ctxFrom parses a raw request as if it came from peer.
func ctxFrom(t testing.TB, peer, raw string) *fasthttp.RequestCtx {
	t.Helper()
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(peer), Port: 4000}, nil)
	return &ctx
}

func TestClientIPReadsEveryXForwardedForLine(t *testing.T) {
	g := &Gateway{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	cases := []struct {
		name, peer, headers, want string
	}{
		{"untrusted peer", "192.0.2.9", "X-Forwarded-For: 1.1.1.1\r\n", "192.0.2.9"},
		{"one line", "10.0.0.1", "X-Forwarded-For: 6.6.6.6, 1.1.1.1\r\n", "1.1.1.1"},
		// HAProxy's option forwardfor appends a line of its own: the client's
		// first line must not win.
		{"proxy appends a line", "10.0.0.1", "X-Forwarded-For: 6.6.6.6\r\nx-forwarded-for: 1.1.1.1\r\n", "1.1.1.1"},
		{"trusted hops on the last line", "10.0.0.1", "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n", "1.1.1.1"},
		{"lines apart", "10.0.0.1", "X-Forwarded-For: 6.6.6.6\r\nX-A: 1\r\nX-Forwarded-For:1.1.1.1\r\n", "1.1.1.1"},
		{"no header", "10.0.0.1", "", "10.0.0.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := ctxFrom(t, c.peer, "GET / HTTP/1.1\r\nHost: h\r\n"+c.headers+"\r\n")
			if got := g.clientIP(ctx).String(); got != c.want {
				t.Fatalf("clientIP = %s, want %s", got, c.want)
			}
		})
	}
}

func TestXFFLinesKeepsTheLast(t *testing.T) {
	var b strings.Builder
	for i := 0; i < maxXFFLines+3; i++ {
		b.WriteString("X-Forwarded-For: " + string(rune('a'+i)) + "\r\n")
	}
	var lines [maxXFFLines][]byte
	n := xffLines([]byte(b.String()+"\r\n"), &lines)
	if n != maxXFFLines || strings.TrimSpace(string(lines[0])) != "d" || strings.TrimSpace(string(lines[n-1])) != string(rune('a'+maxXFFLines+2)) {
		t.Fatalf("n=%d first=%q last=%q", n, lines[0], lines[n-1])
	}
}

func TestClientIPAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	g := &Gateway{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	ctx := ctxFrom(t, "10.0.0.1", "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 1.1.1.1, 10.0.0.2\r\n\r\n")
	if a := testing.AllocsPerRun(100, func() { g.clientIP(ctx) }); a != 0 {
		t.Fatalf("%.1f allocations", a)
	}
}

// FuzzClientIPLines checks that clientIP, which reads the raw header block,
// resolves the same address as guard.ClientIPHeaders on fasthttp's own
// PeekAll of the parsed headers (the allocating reference).
func FuzzClientIPLines(f *testing.F) {
	f.Add("X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 1.1.1.1\r\n")
	f.Add("x-forwarded-for: 1.1.1.1, 10.0.0.2\r\nX-A: b\r\nX-Forwarded-For:10.0.0.3\r\n")
	f.Add("X-Forwarded-For: \r\nX-Forwarded-For: garbage, 10.0.0.9\r\n")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	g := &Gateway{trusted: trusted}
	f.Fuzz(func(t *testing.T, headers string) {
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: h\r\n" + headers + "\r\n"))); err != nil {
			return
		}
		if ambiguousFraming(req.Header.RawHeaders()) {
			return // refused before clientIP runs
		}
		all := req.Header.PeekAll("X-Forwarded-For")
		if len(all) > maxXFFLines {
			return // clientIP reads the last maxXFFLines only
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 4000}, nil)
		remote := netip.MustParseAddr("10.0.0.1")
		want := guard.ClientIPHeaders(remote, all, trusted)
		if got := g.clientIP(&ctx); got != want {
			t.Fatalf("clientIP = %s, PeekAll reference = %s for %q", got, want, headers)
		}
	})
}
