package e2e

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawPost sends head and then body parts over a raw connection and returns
// the gateway's answer (the connection may close right after it).
func rawPost(t *testing.T, g *Gateway, head string, parts ...string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(eventTimeout))
	c.Write([]byte(head))
	for _, p := range parts {
		if _, err := c.Write([]byte(p)); err != nil {
			break // the gateway answered and closed: read its answer
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return resp
}

func chunk(s string) string { return strings.ToUpper(itoaHex(len(s))) + "\r\n" + s + "\r\n" }

func itoaHex(n int) string {
	const digits = "0123456789abcdef"
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 16 {
		b = append([]byte{digits[n%16]}, b...)
	}
	return string(b)
}

func TestChunkedUploadOverTheLimitIs413(t *testing.T) {
	g := startGateway(t, map[string]string{
		"up/index.ts":      `Deno.serve(async (req) => new Response(String((await req.arrayBuffer()).byteLength)));`,
		"up/function.json": `{"maxBodyBytes": 1000}`,
	})
	head := "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	// Within the limit: served.
	resp := rawPost(t, g, head, chunk(strings.Repeat("a", 600)), chunk(strings.Repeat("b", 300)), "0\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("900 chunked bytes: %d", resp.StatusCode)
	}
	// Over it, with no Content-Length to refuse up front: 413 while streaming.
	resp = rawPost(t, g, head, chunk(strings.Repeat("a", 600)), chunk(strings.Repeat("b", 600)), "0\r\n\r\n")
	if resp.StatusCode != 413 || resp.Header.Get("X-Edgeway-Error") != "PAYLOAD_TOO_LARGE" {
		t.Fatalf("1200 chunked bytes: %d %q", resp.StatusCode, resp.Header.Get("X-Edgeway-Error"))
	}
}

func TestStalledBodyIs408(t *testing.T) {
	g := startGateway(t, map[string]string{
		"up/index.ts": `Deno.serve(async (req) => new Response(String((await req.arrayBuffer()).byteLength)));`,
	}, "--body-read-timeout", "300ms")
	head := "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	// One chunk, then silence: the gateway gives up after the idle gap.
	resp := rawPost(t, g, head, chunk("first part"))
	if resp.StatusCode != 408 || resp.Header.Get("X-Edgeway-Error") != "REQUEST_TIMEOUT" {
		t.Fatalf("stalled body: %d %q", resp.StatusCode, resp.Header.Get("X-Edgeway-Error"))
	}
	// Small bodies with a Content-Length that stop early: 408 as well,
	// whether the server reads them whole before the handler (1000 bytes)
	// or the gateway reads the rest before pipelining them (12 KiB).
	for _, c := range []struct{ length, sent int }{{1000, 10}, {12288, 9000}} {
		resp = rawPost(t, g, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: "+itoa(c.length)+"\r\n\r\n", strings.Repeat("x", c.sent))
		if resp.StatusCode != 408 || resp.Header.Get("X-Edgeway-Error") != "REQUEST_TIMEOUT" {
			t.Fatalf("stalled %d-byte body after %d bytes: %d %q", c.length, c.sent, resp.StatusCode, resp.Header.Get("X-Edgeway-Error"))
		}
	}
	// The function keeps serving.
	if r := g.Do("POST", "/up", strings.NewReader("hello"), nil); r.Status != 200 || string(r.Body) != "5" {
		t.Fatalf("after a stalled upload: %d %q", r.Status, r.Body)
	}
}
