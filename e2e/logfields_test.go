package e2e

import (
	"strings"
	"testing"
)

// Log fields say their unit, and the access log has no negative byte
// sentinels: a streamed response is marked as such.
func TestLogFieldsHaveUnits(t *testing.T) {
	g := startGateway(t, map[string]string{
		"fixed/index.ts":  `Deno.serve(() => new Response("12345"));`,
		"stream/index.ts": `Deno.serve(() => new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("x")); c.close(); } })));`,
	})
	expectOK(t, g.Get("/fixed"))
	expectOK(t, g.Get("/stream"))
	ready := g.WaitLog(func(l logLine) bool { return l.Msg() == "worker ready" })
	if _, ok := ready["boot_ms"].(float64); !ok {
		t.Errorf("worker ready without boot_ms: %v", ready)
	}
	fixed := g.WaitLog(func(l logLine) bool { return l.Msg() == "request" && l.Str("path") == "/fixed" })
	if _, ok := fixed["duration_ms"].(float64); !ok || fixed.Int("bytes") != 5 || fixed["streamed"] != nil {
		t.Errorf("access log of a fixed-length answer: %v", fixed)
	}
	streamed := g.WaitLog(func(l logLine) bool { return l.Msg() == "request" && l.Str("path") == "/stream" })
	if _, has := streamed["bytes"]; has || streamed["streamed"] != true {
		t.Errorf("access log of a streamed answer: %v", streamed)
	}
	for _, l := range []logLine{ready, fixed, streamed} {
		for k := range l {
			if k == "duration" || k == "boot" || k == "grace" {
				t.Errorf("field %s without a unit in %v", k, l)
			}
		}
	}
	if strings.Contains(g.logs.text(), `"bytes":-`) {
		t.Errorf("negative bytes in the log")
	}
}
