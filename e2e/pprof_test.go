package e2e

import (
	"net"
	"strings"
	"testing"
)

// A metrics credential must not yield the key that mints every token:
// profiles are opt-in, on the admin listener only, and cmdline (argv,
// --jwt-secret included) is never served.
func TestPprofIsOptInAdminOnlyAndNeverShowsArgv(t *testing.T) {
	const secret = "super-secret-jwt-key-0123456789-abcdefghij"
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	adminAddr := ln.Addr().String()
	ln.Close()
	g := startGateway(t, map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`},
		"--admin-listen", adminAddr, "--internal-key", internalKey, "--pprof",
		"--auth", "jwt", "--jwt-secret", secret, "--public-functions", "hello")
	auth := map[string]string{"Authorization": "Bearer " + internalKey}
	admin := &Gateway{t: t, URL: "http://" + adminAddr}
	for _, path := range []string{"/debug/pprof/cmdline", "/debug/pprof/%63mdline", "/debug/pprof//cmdline"} {
		r := admin.Do("GET", path, nil, auth)
		if r.Status != 404 || strings.Contains(string(r.Body), secret) {
			t.Fatalf("admin %s: %d %q", path, r.Status, r.Body)
		}
	}
	if r := admin.Do("GET", "/debug/pprof/heap?debug=1", nil, auth); r.Status != 200 || strings.Contains(string(r.Body), secret) {
		t.Fatalf("admin heap profile: %d (secret shown: %v)", r.Status, strings.Contains(string(r.Body), secret))
	}
	if r := admin.Get("/debug/pprof/heap"); r.Status != 403 {
		t.Fatalf("admin heap profile without the key: %d", r.Status)
	}
	// The public listener never serves profiles, key or not.
	for _, path := range []string{"/debug/pprof/cmdline", "/debug/pprof/heap"} {
		if r := g.Do("GET", path, nil, auth); r.Status != 404 {
			t.Fatalf("main listener %s: %d %q", path, r.Status, r.Body)
		}
	}
}

func TestPprofOffByDefault(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	adminAddr := ln.Addr().String()
	ln.Close()
	startGateway(t, map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`},
		"--admin-listen", adminAddr, "--internal-key", internalKey)
	admin := &Gateway{t: t, URL: "http://" + adminAddr}
	if r := admin.Do("GET", "/debug/pprof/heap", nil, map[string]string{"Authorization": "Bearer " + internalKey}); r.Status != 404 {
		t.Fatalf("admin heap profile without --pprof: %d", r.Status)
	}
}
