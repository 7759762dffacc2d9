package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFunctionConnectionHeaderIsStripped: a function's Connection header
// and the headers it names never reach the client, and the client
// connection stays open (two pipelined requests, two answers).
func TestFunctionConnectionHeaderIsStripped(t *testing.T) {
	g := startGateway(t, map[string]string{"conn/index.ts": `Deno.serve(() =>
  new Response("ok", { headers: { connection: "x-secret, close", "x-secret": "1", "x-kept": "2" } }));
`})
	const req = "GET /conn HTTP/1.1\r\nHost: a\r\n\r\n"
	got := rawResponses(t, strings.TrimPrefix(g.URL, "http://"), req+req)
	if len(got) != 2 {
		t.Fatalf("%d responses, want 2 on one kept-alive connection", len(got))
	}
	for _, r := range got {
		if r.Status != 200 || r.Header.Get("X-Kept") != "2" {
			t.Fatalf("%d %v", r.Status, r.Header)
		}
		if v, ok := r.Header["Connection"]; ok {
			t.Errorf("Connection reached the client: %q", v)
		}
		if v, ok := r.Header["X-Secret"]; ok {
			t.Errorf("x-secret, named by Connection, reached the client: %q", v)
		}
	}
}

// TestClientIPFromEveryXForwardedForLine: behind a trusted proxy that
// appends its own X-Forwarded-For line, the client's own first line does
// not choose the client address (what the function sees, the access log,
// the rate-limit key).
func TestClientIPFromEveryXForwardedForLine(t *testing.T) {
	g := startGateway(t, map[string]string{"who/index.ts": hitFn, "lim/index.ts": hitFn, "lim/function.json": `{"rpm": 2}`},
		"--trusted-proxies", "127.0.0.1/32")
	addr := strings.TrimPrefix(g.URL, "http://")
	get := func(path, forged, appended string) Response {
		t.Helper()
		rs := rawResponses(t, addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: "+forged+"\r\nX-Forwarded-For: "+appended+"\r\n\r\n")
		if len(rs) != 1 {
			t.Fatalf("%d responses", len(rs))
		}
		return rs[0]
	}
	r := get("/who/mark", "6.6.6.6", "10.1.2.3")
	if xff := seen(t, r)["x-forwarded-for"]; xff != "10.1.2.3" {
		t.Fatalf("the function saw X-Forwarded-For %v, want 10.1.2.3", xff)
	}
	access := g.WaitLog(func(l logLine) bool { return l.Msg() == "request" && l.Str("path") == "/who/mark" })
	if access.Str("client_ip") != "10.1.2.3" {
		t.Errorf("access log client_ip %q, want 10.1.2.3", access.Str("client_ip"))
	}
	// One bucket for 10.0.0.1, whatever its first line says.
	expectOK(t, get("/lim", "6.6.6.1", "10.0.0.1"))
	expectOK(t, get("/lim", "6.6.6.2", "10.0.0.1"))
	expectError(t, get("/lim", "6.6.6.3", "10.0.0.1"), 429, "RATE_LIMITED")
}

// TestUnderscoreHeadersAreDropped: header names with underscores never
// reach a function (nginx's default), so X_Auth_Claims cannot pass for
// X-Auth-Claims.
func TestUnderscoreHeadersAreDropped(t *testing.T) {
	g := startGateway(t, map[string]string{"who/index.ts": hitFn})
	rs := rawResponses(t, strings.TrimPrefix(g.URL, "http://"),
		"GET /who HTTP/1.1\r\nHost: a\r\nX_Auth_Claims: e30\r\nx_a: 1\r\nX-Keep: yes\r\n\r\n")
	if len(rs) != 1 {
		t.Fatalf("%d responses", len(rs))
	}
	h := seen(t, rs[0])
	if _, ok := h["x_auth_claims"]; ok {
		t.Errorf("x_auth_claims reached the function: %v", h)
	}
	if _, ok := h["x_a"]; ok {
		t.Errorf("x_a reached the function: %v", h)
	}
	if h["x-keep"] != "yes" {
		b, _ := json.Marshal(h)
		t.Errorf("x-keep lost: %s", b)
	}
}

// TestSymlinkOutOfFunctionRefused: a link to /etc inside a function folder
// would let the function read /etc/passwd (Deno's read permission follows
// it). Startup and `edgeway check` refuse it, naming the link; with
// --allow-outside-symlinks the gateway starts and serves.
func TestSymlinkOutOfFunctionRefused(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "functions")
	writeTree(t, dir, map[string]string{"leaky/index.ts": `Deno.serve(async () => new Response(await Deno.readTextFile(new URL("./etc/hostname", import.meta.url))));`})
	link := filepath.Join(dir, "leaky", "etc")
	if err := os.Symlink("/etc", link); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"serve", "check"} {
		args := []string{mode, "--functions", dir, "--deno", denoPath(t), "--port", "0", "--auth", "none"}
		out, err := exec.Command(binPath(t), args...).CombinedOutput()
		if err == nil {
			t.Fatalf("%s: expected an error, got success: %s", mode, out)
		}
		if !strings.Contains(string(out), link+":") || !strings.Contains(string(out), "--allow-outside-symlinks") {
			t.Fatalf("%s: the error does not name the link %s and the flag: %s", mode, link, out)
		}
	}
	g := launch(t, dir, "--allow-outside-symlinks")
	if err := g.waitListening(); err != nil {
		t.Fatalf("with --allow-outside-symlinks: %v\n%s", err, g.logs.text())
	}
	if r := g.Get("/leaky"); r.Status != 200 {
		t.Fatalf("with --allow-outside-symlinks: %d %q", r.Status, r.Body)
	}
}
