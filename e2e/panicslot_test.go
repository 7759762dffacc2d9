package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/fasthttp/websocket"
)

// A panic inside the upstream Proxy (between taking a worker slot and
// giving it back) must give the slot back: with maxConcurrency 1 and one
// worker, a single leaked slot leaves the function answering 503
// OVERLOADED to everyone after its queue timeout.
func TestPanicInProxyGivesTheSlotBack(t *testing.T) {
	t.Setenv("EDGEWAY_BIN", faultBinary(t))
	files := map[string]string{
		"one/index.ts": `Deno.serve(async (req) => new Response("n=" + (await req.arrayBuffer()).byteLength));`,
		// A short queue timeout: a leaked slot shows as 503 in 2 s.
		"one/function.json": `{"eagerSpawn": true, "maxConcurrency": 1, "maxWorkers": 1, "queueTimeoutMs": 2000}`,
	}
	big := strings.Repeat("x", 200<<10) // streamed to the worker: an exclusive connection
	tests := []struct {
		name       string
		pipelining string
		method     string
		body       string
		fault      string
	}{
		{"pipelined, writing (holding the write lock)", "auto", "GET", "", "proxy-write"},
		{"pipelined, before reading (holding the turn)", "auto", "GET", "", "proxy-read"},
		{"exclusive, streamed body, before reading", "auto", "POST", big, "proxy-read"},
		{"exclusive, writing", "off", "GET", "", "proxy-write"},
		{"exclusive, before reading", "off", "GET", "", "proxy-read"},
	}
	gateways := map[string]*Gateway{}
	outer := t // the gateways outlive each subtest
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := gateways[tc.pipelining]
			if g == nil {
				g = startGateway(outer, files, "--internal-key", internalKey, "--upstream-pipelining", tc.pipelining)
				gateways[tc.pipelining] = g
				if r := g.Get("/one"); r.Status != 200 {
					t.Fatalf("warm-up: %d %q", r.Status, r.Body)
				}
			}
			before := scrape(t, g, "")[`edgeway_panics_total{where="request"}`]
			const panics = 4
			for i := 0; i < panics; i++ {
				r := g.Do(tc.method, "/one", bytes.NewReader([]byte(tc.body)), map[string]string{"X-Test-Fault": tc.fault})
				expectError(t, r, 500, "INTERNAL")
			}
			for i := 0; i < 3; i++ {
				r := g.Do(tc.method, "/one", bytes.NewReader([]byte(tc.body)), nil)
				if want := "n=" + itoa(len(tc.body)); r.Status != 200 || string(r.Body) != want {
					t.Fatalf("request %d after %d panics: %d %q, want 200 %q", i, panics, r.Status, r.Body, want)
				}
			}
			if got := scrape(t, g, "")[`edgeway_panics_total{where="request"}`]; got != before+panics {
				t.Fatalf("edgeway_panics_total{where=\"request\"} = %v, want %v", got, before+panics)
			}
		})
	}
}

// A panic after the worker answered (in what the gateway does after the
// proxy: breaker, metrics, logs) leaks nothing either: a streamed
// response's slot comes back when the 500 replaces it, and a WebSocket
// the function accepted still starts (cancelling it would leak its slots
// and worker connection), then frees its slot when it closes.
func TestPanicAfterTheProxyLeaksNothing(t *testing.T) {
	t.Setenv("EDGEWAY_BIN", faultBinary(t))
	g := startGateway(t, map[string]string{
		"ws/index.ts":      wsPid,
		"ws/function.json": `{"maxWorkers": 1, "maxWebSocketConnections": 1, "maxConcurrency": 1}`,
		"stream/index.ts": `Deno.serve(() => new Response(new ReadableStream({
  start(c) { c.enqueue(new TextEncoder().encode("a")); c.enqueue(new TextEncoder().encode("b")); c.close(); },
})));`,
		"stream/function.json": `{"maxWorkers": 1, "maxConcurrency": 1, "queueTimeoutMs": 2000}`,
	}, "--internal-key", internalKey)
	fault := map[string]string{"X-Test-Fault": "after-proxy"}

	for i := 0; i < 4; i++ {
		expectError(t, g.Do("GET", "/stream", nil, fault), 500, "INTERNAL")
	}
	if r := g.Get("/stream"); r.Status != 200 || string(r.Body) != "ab" {
		t.Fatalf("streamed response after 4 panics: %d %q", r.Status, r.Body)
	}

	// A panic during the handshake (writing it, before reading the
	// answer) gives back the WebSocket slot and the handshake's request
	// slot, and closes the worker connection.
	for _, at := range []string{"proxy-write", "proxy-read", "proxy-write"} {
		d := websocket.Dialer{HandshakeTimeout: eventTimeout}
		c, resp, err := d.Dial(wsURL(g, "/ws"), http.Header{"X-Test-Fault": {at}})
		if err == nil {
			c.Close()
			t.Fatalf("upgrade panicking at %s succeeded", at)
		}
		if resp == nil || resp.StatusCode != 500 || resp.Header.Get("X-Edgeway-Error") != "INTERNAL" {
			t.Fatalf("upgrade panicking at %s: %v %+v", at, err, resp)
		}
	}

	c, resp := dialWS(t, wsURL(g, "/ws"), http.Header{"X-Test-Fault": {"after-proxy"}})
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade with a panic after it: %d", resp.StatusCode)
	}
	if _, msg, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "pid ") {
		t.Fatalf("first message %q %v", msg, err)
	}
	echo(t, c, "after the panic")
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	g.WaitLog(wsClosedLog(1000, "client"))
	c2, _ := dialPid(t, g, "/ws") // the worker's only WebSocket slot is free again
	echo(t, c2, "second session")

	m := scrape(t, g, "")
	expectMetrics(t, m, map[string]float64{`edgeway_panics_total{where="request"}`: 8})
}
