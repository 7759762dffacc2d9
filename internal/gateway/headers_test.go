package gateway

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func parseRequest(t testing.TB, raw string) *fasthttp.Request {
	t.Helper()
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	return &req
}

func TestSanitizeRequest(t *testing.T) {
	req := parseRequest(t, "GET /x HTTP/1.1\r\nHost: h\r\n"+
		"X-Edgeway-Secret: 1\r\nx-EDGEWAY-other: 2\r\nX-Auth-Claims: forged\r\n"+
		"Connection: keep-alive, X-Hop\r\nX-Hop: drop\r\nKeep-Alive: 5\r\nTE: trailers\r\n"+
		"Upgrade: h2c\r\nProxy-Authorization: Basic x\r\nExpect: 100-continue\r\n"+
		"X-Keep: yes\r\nCookie: a=1; b=2\r\n\r\n")
	sanitizeRequest(&req.Header)
	for _, gone := range []string{"X-Edgeway-Secret", "X-Edgeway-Other", "X-Auth-Claims", "Connection", "X-Hop", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization", "Expect"} {
		if v := req.Header.Peek(gone); v != nil {
			t.Errorf("%s survived: %q", gone, v)
		}
	}
	if string(req.Header.Peek("X-Keep")) != "yes" || string(req.Header.Peek("Cookie")) != "a=1; b=2" {
		t.Errorf("end-to-end headers changed: %s", req.Header.String())
	}
}

func TestSanitizeRequestKeepsConnectionClose(t *testing.T) {
	req := parseRequest(t, "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\nX-Edgeway-A: 1\r\n\r\n")
	sanitizeRequest(&req.Header)
	if !req.Header.ConnectionClose() {
		t.Fatal("the client's Connection: close was lost")
	}
}

func TestSanitizeResponse(t *testing.T) {
	var resp fasthttp.Response
	raw := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Edgeway-Error: FORGED\r\nKeep-Alive: 5\r\nUpgrade: x\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Mine: 1\r\n\r\n"
	if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	sanitizeResponse(&resp.Header)
	for _, gone := range []string{"X-Edgeway-Error", "Keep-Alive", "Upgrade"} {
		if v := resp.Header.Peek(gone); v != nil {
			t.Errorf("%s survived", gone)
		}
	}
	out := resp.Header.String()
	if string(resp.Header.Peek("X-Mine")) != "1" || !strings.Contains(out, "Set-Cookie: a=1") || !strings.Contains(out, "Set-Cookie: b=2") {
		t.Errorf("response headers changed: %s", resp.Header.String())
	}
}

func BenchmarkSanitizeRequest(b *testing.B) {
	req := parseRequest(b, "GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: bench\r\nAccept: */*\r\nConnection: keep-alive\r\nCookie: a=1\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		sanitizeRequest(&req.Header)
	}
}

func TestSanitizeResponseStripsConnectionAndNamedHeaders(t *testing.T) {
	var resp fasthttp.Response
	raw := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: x-secret, Content-Length\r\nConnection: X-Other\r\nx-secret: 1\r\nX-Other: 2\r\nX-Mine: 3\r\n\r\nok"
	if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	sanitizeResponse(&resp.Header)
	for _, gone := range []string{"Connection", "X-Secret", "X-Other"} {
		if v := resp.Header.Peek(gone); v != nil {
			t.Errorf("%s survived: %q", gone, v)
		}
	}
	if string(resp.Header.Peek("X-Mine")) != "3" || resp.Header.ContentLength() != 2 {
		t.Errorf("other headers changed: %s", resp.Header.String())
	}
	if resp.Header.ConnectionClose() {
		t.Error("the function's Connection header closed the client connection")
	}
}

func TestSanitizeRequestDropsUnderscoreNames(t *testing.T) {
	req := parseRequest(t, "GET /x HTTP/1.1\r\nHost: h\r\nX_Auth_Claims: forged\r\nx_a: 1\r\nX-Keep: yes\r\n\r\n")
	sanitizeRequest(&req.Header)
	for _, gone := range []string{"X_Auth_Claims", "x_a"} {
		if v := req.Header.Peek(gone); v != nil {
			t.Errorf("%s survived: %q", gone, v)
		}
	}
	if string(req.Header.Peek("X-Keep")) != "yes" {
		t.Errorf("X-Keep lost: %s", req.Header.String())
	}
}
