package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
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

// --inspect-brk: the worker waits for a debugger before running any code;
// once one attaches and lets it run, the worker becomes ready and serves.
func TestInspectBrkWaitsForADebugger(t *testing.T) {
	base := freePort(t)
	g := startGateway(t, map[string]string{
		"hello/index.ts": `Deno.serve(() => new Response("hi"));`,
	}, "--dev", "--auth", "none", "--inspect-brk=127.0.0.1:"+strconv.Itoa(base))
	// The first request starts the worker, which waits for a debugger.
	got := make(chan Response, 1)
	go func() {
		r, err := g.try("GET", "/hello", nil, nil)
		if err != nil {
			r = Response{Status: -1, Body: []byte(err.Error())}
		}
		got <- r
	}()
	line := g.WaitLog(func(l logLine) bool { return l.Str("inspect") != "" })
	addr := line.Str("inspect")
	var targets []struct {
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	deadline := time.Now().Add(eventTimeout)
	for len(targets) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the worker's inspector at %s never listed a target", addr)
		}
		resp, err := http.Get("http://" + addr + "/json/list")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
		}
		if len(targets) == 0 {
			select {
			case r := <-got:
				t.Fatalf("the worker answered before a debugger attached: %d %q", r.Status, r.Body)
			case <-timeAfter(20 * time.Millisecond): // polling the inspector until it listens
			}
		}
	}
	if n := g.logs.count(func(l logLine) bool { return l.Msg() == "worker ready" }); n != 0 {
		t.Fatalf("worker ready before a debugger attached")
	}
	ws, _, err := websocket.DefaultDialer.Dial(targets[0].WebSocketDebuggerURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for i, method := range []string{"Runtime.enable", "Debugger.enable", "Runtime.runIfWaitingForDebugger", "Debugger.resume"} {
		if err := ws.WriteJSON(map[string]any{"id": i + 1, "method": method}); err != nil {
			t.Fatal(err)
		}
	}
	// Deno may pause again on the first statement: keep resuming until
	// the request is answered.
	done := make(chan struct{})
	defer close(done)
	go func() {
		id := 100
		for {
			var msg map[string]any
			if ws.ReadJSON(&msg) != nil {
				return
			}
			if msg["method"] == "Debugger.paused" {
				id++
				ws.WriteJSON(map[string]any{"id": id, "method": "Debugger.resume"})
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	select {
	case r := <-got:
		if r.Status != 200 || string(r.Body) != "hi" {
			t.Fatalf("after the debugger let it run: %d %q", r.Status, r.Body)
		}
	case <-timeAfter(eventTimeout):
		t.Fatal("the worker did not serve after the debugger let it run")
	}
}
