package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// urlFn answers "<method> <host>" from new URL(req.url), or 500 "url" when
// the URL does not parse: what typical function code does first.
const urlFn = `Deno.serve((req) => {
  try {
    const u = new URL(req.url);
    return new Response(req.method + " " + u.host);
  } catch (_) {
    return new Response("url", { status: 500 });
  }
});
`

// startPlainDeno runs urlFn in a plain Deno server on a loopback TCP port:
// the worker's parser (hyper) with nothing in front. It returns the address.
func startPlainDeno(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "server.ts")
	src := strings.Replace(urlFn, "Deno.serve(", `Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: (a) => console.log("listening " + a.port) }, `, 1)
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(denoPath(t), "run", "--allow-net", script)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				port <- p
			}
		}
	}()
	select {
	case p := <-port:
		return "127.0.0.1:" + p
	case <-time.After(eventTimeout):
		t.Fatal("plain Deno did not start")
	}
	return ""
}

// rawResponses writes req on a new connection to addr, half-closes it and
// returns every response read before the server closed.
func rawResponses(t *testing.T, addr, req string) []Response {
	t.Helper()
	return rawRead(t, addr, req, false)
}

// rawRead is rawResponses; with mustClose the server must also have
// closed the connection within eventTimeout (a read error fails the test
// even after some responses came).
func rawRead(t *testing.T, addr, req string, mustClose bool) []Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(eventTimeout))
	b, err := io.ReadAll(c)
	switch {
	case err != nil && mustClose:
		t.Fatalf("%s neither answered nor closed: %v (read %q)", addr, err, b)
	case err != nil && len(b) == 0:
		t.Fatalf("no answer from %s: %v", addr, err)
	}
	var out []Response
	br := bufio.NewReader(bytes.NewReader(b))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		body, _ := io.ReadAll(resp.Body)
		out = append(out, Response{Status: resp.StatusCode, Header: resp.Header, Body: body})
	}
}

func fields(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "X-H%d: v\r\n", i)
	}
	return b.String()
}

// TestRequestCheckDifferential sends one corpus of raw requests to plain
// Deno and through the gateway. Whatever Deno refuses (400, or a Host that
// makes new URL(req.url) throw) the gateway refuses at the front door: 400
// BAD_REQUEST, connection closed, nothing forwarded. Whatever Deno accepts
// the gateway forwards unchanged, except where a documented front-door rule
// (rule) refuses it.
func TestRequestCheckDifferential(t *testing.T) {
	deno := startPlainDeno(t)
	g := startGateway(t, map[string]string{"echo/index.ts": urlFn})
	gw := strings.TrimPrefix(g.URL, "http://")
	const path = "/echo/a"
	line := func(method, target, proto string) string { return method + " " + target + " " + proto + "\r\n" }
	get := line("GET", path, "HTTP/1.1")
	host := "Host: a.example\r\n"
	hostReq := func(h string) string { return get + "Host: " + h + "\r\n\r\n" }
	cases := []struct {
		name, req string
		rule      bool // refused by a front-door rule although Deno accepts it
	}{
		{"plain", get + host + "\r\n", false},
		{"HTTP/1.0", line("GET", path, "HTTP/1.0") + host + "\r\n", false},
		{"lowercase method", line("get", path, "HTTP/1.1") + host + "\r\n", false},
		{"extension method", line("PURGE", path, "HTTP/1.1") + host + "\r\n", false},
		{"CONNECT", line("CONNECT", path, "HTTP/1.1") + host + "\r\n", false},
		{"0xff in path", line("GET", path+"\xff", "HTTP/1.1") + host + "\r\n", false},
		{"0x80 in path", line("GET", path+"\x80", "HTTP/1.1") + host + "\r\n", false},
		{"0xff in query", line("GET", path+"?q=\xff", "HTTP/1.1") + host + "\r\n", false},
		{"ASCII oddities in path", line("GET", path+"\"<>^`{|}", "HTTP/1.1") + host + "\r\n", false},
		{"HTTP/1.2", line("GET", path, "HTTP/1.2") + host + "\r\n", false},
		{"HTTP/2.0", line("GET", path, "HTTP/2.0") + host + "\r\n", false},
		{"HTTP/0.9", line("GET", path, "HTTP/0.9") + host + "\r\n", false},
		{"100 fields", get + host + fields(99) + "\r\n", false},
		{"101 fields", get + host + fields(100) + "\r\n", true},
		{"129 fields", get + host + fields(128) + "\r\n", false},
		{"space before colon", get + host + "X-A : 1\r\n\r\n", false},
		{"NUL in value", get + host + "X-A: a\x00b\r\n\r\n", false},
		{"bare CR in value", get + host + "X-A: a\rb\r\n\r\n", false},
		{"DEL in value", get + host + "X-A: a\x7fb\r\n\r\n", false},
		{"obs-text in value", get + host + "X-A: a\xffb\r\n\r\n", false},
		{"0xff in name", get + host + "X-\xff: 1\r\n\r\n", false},
		{"two Hosts", get + host + "Host: b.example\r\n\r\n", false},
		{"host port 99999", hostReq("localhost:99999"), false},
		{"host port 65536", hostReq("a:65536"), false},
		{"host port 65535", hostReq("a:65535"), false},
		{"host alpha port", hostReq("a:ab"), false},
		{"host empty port", hostReq("a:"), false},
		{"host <", hostReq("a<b"), false},
		{"host bad IPv4", hostReq("999.1.1.1"), false},
		{"host IPv4", hostReq("10.1.2.3:8080"), false},
		{"host bad punycode", hostReq("xn--a.example"), false},
		{"host empty punycode", hostReq("xn--.example"), false},
		{"host good punycode", hostReq("xn--bcher-kva.example"), false},
		{"host IPv6", hostReq("[::1]:8080"), false},
		{"host bad IPv6", hostReq("[::1"), false},
		{"host underscore", hostReq("a_b.example"), false},
		{"host sub-delims", hostReq("a!$&'()*+,;=~b"), false},
		{"host userinfo", hostReq("u@a.example"), true},
		{"host quote", hostReq(`a"b`), true},
		{"host non-ASCII", hostReq("a\xff.example"), true},
		{"long method", line(strings.Repeat("M", 100), path, "HTTP/1.1") + host + "\r\n", false},
		{"method with tchars", line("M!#$%&'*+-.^_`|~", path, "HTTP/1.1") + host + "\r\n", false},
		{"lowercase connect", line("connect", path, "HTTP/1.1") + host + "\r\n", false},
		{"TRACE", line("TRACE", path, "HTTP/1.1") + host + "\r\n", false},
		{"long header name", get + host + strings.Repeat("N", 8000) + ": v\r\n\r\n", false},
		{"empty value", get + host + "X-A:\r\n\r\n", false},
		{"whitespace value", get + host + "X-A: \t \r\n\r\n", false},
		{"lowercase host name", get + "host: a.example\r\n\r\n", false},
		// Deno reports its own address, the gateway its default Host.
		{"HTTP/1.0 without Host", line("GET", path, "HTTP/1.0") + "\r\n", false},
		{"encoded NUL and dot segments", line("GET", path+"/%00/../b?%", "HTTP/1.1") + host + "\r\n", false},
		{"host trailing dot, upper case", hostReq("A.Example."), false},
		{"host with path", hostReq("a/x"), true},
		{"host with fragment", hostReq("a#x"), true},
		// Deno 2.9.6 (hyper) and nginx 1.22 both take a bare LF as a line
		// end, in the request line and in header lines. So does fasthttp;
		// the gateway refuses it only in header lines (its framing rule).
		{"bare LF ending the request line", "GET " + path + " HTTP/1.1\n" + host + "\r\n", false},
		{"bare LF ending a header line", get + "Host: a.example\n\r\n", true},
		{"bare LF everywhere", "GET " + path + " HTTP/1.1\nHost: a.example\n\n", true},
	}
	const next = "GET /echo/next HTTP/1.1\r\nHost: a.example\r\n\r\n"
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			direct := rawResponses(t, deno, c.req)
			if len(direct) == 0 {
				t.Fatalf("plain Deno closed without an answer")
			}
			denoRefuses := direct[0].Status == 400 || (direct[0].Status == 500 && string(direct[0].Body) == "url")
			via := rawResponses(t, gw, c.req+next)
			if len(via) == 0 {
				t.Fatalf("the gateway closed without an answer")
			}
			if denoRefuses || c.rule {
				if via[0].Status != 400 || via[0].Header.Get("X-Edgeway-Error") != "BAD_REQUEST" {
					t.Fatalf("Deno: %d %q; gateway: %d %q (x-edgeway-error %q), want a front-door 400",
						direct[0].Status, direct[0].Body, via[0].Status, via[0].Body, via[0].Header.Get("X-Edgeway-Error"))
				}
				if len(via) != 1 {
					t.Fatalf("the connection served %d responses after the refusal, want it closed", len(via)-1)
				}
				return
			}
			sameBody := string(via[0].Body) == string(direct[0].Body) || (c.name == "HTTP/1.0 without Host" && string(via[0].Body) == "GET localhost")
			if via[0].Status != direct[0].Status || !sameBody {
				t.Fatalf("Deno: %d %q; gateway: %d %q, want the same", direct[0].Status, direct[0].Body, via[0].Status, via[0].Body)
			}
		})
	}
}
