package gateway

import (
	"bufio"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestRequestProblem(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteString("X-H" + strconv.Itoa(i) + ": v\r\n")
		}
		return b.String()
	}
	cases := []struct {
		name, raw string
		want      string
	}{
		{"plain", "GET /f/a HTTP/1.1\r\nHost: a.example\r\n\r\n", ""},
		{"http/1.0 without host", "GET /f/a HTTP/1.0\r\n\r\n", ""},
		{"lowercase method", "get /f/a HTTP/1.1\r\nHost: a\r\n\r\n", ""},
		{"custom method", "PURGE /f/a HTTP/1.1\r\nHost: a\r\n\r\n", ""},
		{"CONNECT", "CONNECT /f/a HTTP/1.1\r\nHost: a\r\n\r\n", badMethod},
		{"HTTP/1.2", "GET /f/a HTTP/1.2\r\nHost: a\r\n\r\n", badProtocol},
		{"HTTP/2.0", "GET /f/a HTTP/2.0\r\nHost: a\r\n\r\n", badProtocol},
		{"HTTP/0.9", "GET /f/a HTTP/0.9\r\nHost: a\r\n\r\n", badProtocol},
		{"0xff in path", "GET /f/\xff HTTP/1.1\r\nHost: a\r\n\r\n", badURIByte},
		{"0x80 in query", "GET /f/a?\x80 HTTP/1.1\r\nHost: a\r\n\r\n", badURIByte},
		{"ascii oddities in path", "GET /f/a\"<>^`{|}\\ HTTP/1.1\r\nHost: a\r\n\r\n", ""},
		{"100 fields", "GET /f HTTP/1.1\r\nHost: a\r\n" + many(99) + "\r\n", ""},
		{"101 fields", "GET /f HTTP/1.1\r\nHost: a\r\n" + many(100) + "\r\n", badFields},
		{"obs-text value", "GET /f HTTP/1.1\r\nHost: a\r\nX: \xff\r\n\r\n", ""},
		{"host port too big", "GET /f HTTP/1.1\r\nHost: a:65536\r\n\r\n", badHost},
		{"host port 99999", "GET /f HTTP/1.1\r\nHost: localhost:99999\r\n\r\n", badHost},
		{"host port max", "GET /f HTTP/1.1\r\nHost: a:65535\r\n\r\n", ""},
		{"host empty port", "GET /f HTTP/1.1\r\nHost: a:\r\n\r\n", ""},
		{"host only port", "GET /f HTTP/1.1\r\nHost: :80\r\n\r\n", badHost},
		{"host <", "GET /f HTTP/1.1\r\nHost: a<b\r\n\r\n", badHost},
		{"host userinfo", "GET /f HTTP/1.1\r\nHost: u@a\r\n\r\n", badHost},
		{"host non-ascii", "GET /f HTTP/1.1\r\nHost: a\xff.com\r\n\r\n", badHost},
		{"host underscore", "GET /f HTTP/1.1\r\nHost: a_b.com\r\n\r\n", ""},
		{"host sub-delims", "GET /f HTTP/1.1\r\nHost: a!$&'()*+,;=~b\r\n\r\n", ""},
		{"host bad ipv4", "GET /f HTTP/1.1\r\nHost: 999.1.1.1\r\n\r\n", badHost},
		{"host ipv4", "GET /f HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n\r\n", ""},
		{"host short ipv4", "GET /f HTTP/1.1\r\nHost: 0x7f.1\r\n\r\n", ""},
		{"host name ending in number", "GET /f HTTP/1.1\r\nHost: a.1\r\n\r\n", badHost},
		{"host ipv6", "GET /f HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", ""},
		{"host bad punycode", "GET /f HTTP/1.1\r\nHost: xn--a.com\r\n\r\n", badHost},
		{"host empty punycode", "GET /f HTTP/1.1\r\nHost: xn--.example\r\n\r\n", badHost},
		{"host ASCII punycode", "GET /f HTTP/1.1\r\nHost: xn--abc-.example\r\n\r\n", badHost},
		{"host good punycode", "GET /f HTTP/1.1\r\nHost: xn--bcher-kva.example\r\n\r\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			if err := h.Read(bufio.NewReader(strings.NewReader(c.raw))); err != nil {
				t.Fatalf("fasthttp refuses it already: %v", err)
			}
			got := requestProblem(h.Method(), h.RequestURI(), h.Protocol(), h.RawHeaders(), h.Host(), 100)
			if got != c.want {
				t.Errorf("requestProblem = %q, want %q", got, c.want)
			}
		})
	}
}

func TestRequestProblemLongTarget(t *testing.T) {
	uri := []byte("/" + strings.Repeat("a", maxWorkerURI))
	if got := requestProblem([]byte("GET"), uri, strHTTP11, nil, nil, 100); got != badURILen {
		t.Fatalf("got %q", got)
	}
	if got := requestProblem([]byte("GET"), uri[:maxWorkerURI], strHTTP11, nil, nil, 100); got != "" {
		t.Fatalf("got %q", got)
	}
}

func TestRequestProblemAllocatesNothing(t *testing.T) {
	var h fasthttp.RequestHeader
	raw := "POST /functions/v1/hello/x?y=1 HTTP/1.1\r\nHost: api.example.com:8443\r\nContent-Length: 2\r\nAuthorization: Bearer x\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if requestProblem(h.Method(), h.RequestURI(), h.Protocol(), h.RawHeaders(), h.Host(), 100) != "" {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}

// FuzzValidHost checks validHost against net/url's authority parser where
// both must agree (validHost may be stricter: WHATWG rules, no userinfo)
// and that it never panics.
func FuzzValidHost(f *testing.F) {
	for _, s := range []string{"a", "a:1", "a:65536", "[::1]:80", "[::1", "1.2.3.4", "999.1.1.1", "0x7f.1", "a.1.", "xn--a", "xn--bcher-kva.de", "u@a", "a b", ":80", "a\xff", "0x", "a.0x", "1.2.3.4.5", "08.1.1.1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		ok := validHost([]byte(host))
		if !ok || host == "" {
			return
		}
		u, err := url.Parse("http://" + host + "/")
		if err != nil {
			t.Fatalf("validHost accepts %q, net/url refuses it: %v", host, err)
		}
		if u.User != nil || u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("validHost accepts %q, which is not just a host: %#v", host, u)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n > 65535 {
				t.Fatalf("validHost accepts port %q", p)
			}
		}
	})
}

// FuzzRequestProblem parses arbitrary request heads with fasthttp and runs
// the check on what it accepted: no panic, and a request it passes has only
// ASCII in its target and an HTTP/1.x protocol.
func FuzzRequestProblem(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"get /\xff HTTP/1.1\r\nHost: a:99999\r\n\r\n",
		"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/2.0\r\nHost: [::1]\r\n\r\n",
		"GET / HTTP/1.0\r\nX: 1\r\nY: 2\r\n\r\n",
	} {
		f.Add(s, 1)
		f.Add(s, 100)
	}
	f.Fuzz(func(t *testing.T, raw string, maxFields int) {
		var h fasthttp.RequestHeader
		if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			return
		}
		if requestProblem(h.Method(), h.RequestURI(), h.Protocol(), h.RawHeaders(), h.Host(), maxFields) != "" {
			return
		}
		for _, c := range h.RequestURI() {
			if c >= 0x80 {
				t.Fatalf("non-ASCII target passed: %q", raw)
			}
		}
		if p := string(h.Protocol()); p != "HTTP/1.1" && p != "HTTP/1.0" {
			t.Fatalf("protocol %q passed", p)
		}
		if n := strings.Count(string(h.RawHeaders()), "\n") - 1; n > maxFields {
			t.Fatalf("%d fields passed with a limit of %d", n, maxFields)
		}
	})
}

func BenchmarkRequestProblem(b *testing.B) {
	var h fasthttp.RequestHeader
	raw := "POST /functions/v1/hello/x?y=1 HTTP/1.1\r\nHost: api.example.com:8443\r\nContent-Length: 2\r\nAuthorization: Bearer x\r\nUser-Agent: supabase-js/2\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		requestProblem(h.Method(), h.RequestURI(), h.Protocol(), h.RawHeaders(), h.Host(), 100)
	}
}
