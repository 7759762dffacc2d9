package e2e

import (
	"strings"
	"testing"
)

// With the default --trusted-proxies (loopback), a local proxy's
// X-Forwarded-For is believed; with it replaced (none), a loopback peer
// sending the header is an untrusted forwarder: warned about once, not per
// request, and not for requests without the header.
func TestTrustedProxiesDefaultAndUntrustedForwarderWarning(t *testing.T) {
	isWarning := func(l logLine) bool { return strings.HasPrefix(l.Msg(), "X-Forwarded-For from a private-network peer") }
	isAccess := func(l logLine) bool { return l.Msg() == "request" }
	xff := map[string]string{"X-Forwarded-For": "203.0.113.7"}

	g := startGateway(t, map[string]string{"echo/index.ts": echoURL})
	r := g.Do("GET", "/functions/v1/echo", nil, xff)
	if h := r.JSON(t)["headers"].(map[string]any); h["x-forwarded-for"] != "203.0.113.7" {
		t.Fatalf("default trusted proxies: the function saw %v, want the forwarded client", h["x-forwarded-for"])
	}
	g.WaitLogCount(isAccess, 1)
	if n := g.logs.count(isWarning); n != 0 {
		t.Fatalf("warned about a trusted (loopback) proxy: %d", n)
	}

	g = startGateway(t, map[string]string{"echo/index.ts": echoURL}, "--trusted-proxies", "none")
	g.Get("/functions/v1/echo")
	g.WaitLogCount(isAccess, 1)
	if n := g.logs.count(isWarning); n != 0 {
		t.Fatalf("warned about a request without X-Forwarded-For: %d", n)
	}
	for i := 0; i < 3; i++ {
		r := g.Do("GET", "/functions/v1/echo", nil, xff)
		if h := r.JSON(t)["headers"].(map[string]any); h["x-forwarded-for"] != "127.0.0.1" {
			t.Fatalf("untrusted peer: the function saw %v, want the peer 127.0.0.1", h["x-forwarded-for"])
		}
	}
	g.WaitLogCount(isAccess, 4)
	w := g.WaitLog(isWarning)
	if w.Str("peer") != "127.0.0.1" || w.Str("level") != "warn" {
		t.Fatalf("warning %v", w)
	}
	if n := g.logs.count(isWarning); n != 1 {
		t.Fatalf("%d warnings for three requests, want one", n)
	}
}
