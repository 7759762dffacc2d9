package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Each worker gets its own inspector port, counting up from the base and
// logged with its function and worker; wall-clock limits are lifted.
func TestInspectPortPerWorker(t *testing.T) {
	base := freePort(t)
	g := startGateway(t, map[string]string{
		"two/index.ts":      `Deno.serve(async (req) => { if (new URL(req.url).searchParams.has("slow")) await new Promise((r) => setTimeout(r, 2500)); return new Response("two"); });`,
		"two/function.json": `{"minWorkers": 2, "maxWorkers": 2}`,
		"one/index.ts":      `Deno.serve(() => new Response("one"));`,
		"one/function.json": `{"minWorkers": 1}`,
	}, "--dev", "--auth", "none", "--inspect=127.0.0.1:"+strconv.Itoa(base), "--timeout", "1s")
	isInspector := func(l logLine) bool { return l.Str("inspect") != "" }
	g.WaitLogCount(isInspector, 3)
	// Deno opens the inspector before it runs any code, so by "ready" it listens.
	g.WaitLogCount(func(l logLine) bool { return l.Msg() == "worker ready" }, 3)
	seen := map[string]string{}
	for _, l := range matching(g.logs, isInspector) {
		addr, fn := l.Str("inspect"), l.Str("function")
		if fn == "" || l.Int("worker") == 0 {
			t.Errorf("inspector log line without function or worker: %v", l)
		}
		if prev, dup := seen[addr]; dup {
			t.Fatalf("%s given to two workers (%s and %s)", addr, prev, fn)
		}
		seen[addr] = fn
		host, port, _ := net.SplitHostPort(addr)
		if p, _ := strconv.Atoi(port); host != "127.0.0.1" || p < base || p > base+2 {
			t.Errorf("inspector at %s, want 127.0.0.1:%d..%d", addr, base, base+2)
		}
		resp, err := http.Get("http://" + addr + "/json/version")
		if err != nil {
			t.Fatalf("%s's inspector at %s: %v", fn, addr, err)
		}
		var v map[string]string
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if !strings.HasPrefix(v["Browser"], "Deno") {
			t.Errorf("%s /json/version = %v", addr, v)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("inspector ports: %v, want 3 distinct", seen)
	}
	// --timeout 1s does not apply while inspecting (a paused debugger).
	if r := g.Get("/two?slow"); r.Status != 200 || string(r.Body) != "two" {
		t.Fatalf("slow request under --inspect: %d %q", r.Status, r.Body)
	}
}

func TestInspectRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "functions")
	writeTree(t, dir, map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"production", []string{"--inspect"}, "refused in production mode"},
		{"production brk", []string{"--inspect-brk=127.0.0.1:9333"}, "refused in production mode"},
		{"not loopback", []string{"--dev", "--inspect=0.0.0.0:9333"}, "not a loopback address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := launch(t, dir, tc.args...)
			if code := g.WaitExit(); code == 0 {
				t.Fatalf("exit 0, want a refusal")
			}
			if !strings.Contains(g.logs.text(), tc.want) {
				t.Fatalf("stderr %q does not say %q", g.logs.text(), tc.want)
			}
		})
	}
	t.Run("forced", func(t *testing.T) {
		g := launch(t, dir, "--inspect=127.0.0.1:"+strconv.Itoa(freePort(t)), "--inspect-force")
		if err := g.waitListening(); err != nil {
			t.Fatalf("--inspect-force in production did not start: %v\n%s", err, g.logs.text())
		}
		if r := g.Get("/hello"); r.Status != 200 {
			t.Fatalf("GET /hello: %d", r.Status)
		}
	})
}

// matching returns the log lines so far that match pred.
func matching(s *logSink, pred func(logLine) bool) []logLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []logLine
	for _, l := range s.lines {
		if pred(l) {
			out = append(out, l)
		}
	}
	return out
}
