package e2e

import (
	"strings"
	"testing"
)

// consoleFunction logs through every console method while handling a
// request; /first waits for /second, so the line it prints after that
// wait shows whose context it ran in.
const consoleFunction = `
console.log("printed at import");
let release;
const released = new Promise((r) => { release = r; });
Deno.serve(async (req) => {
  const path = new URL(req.url).pathname;
  const who = path.slice(path.lastIndexOf("/") + 1);
  if (who === "first") {
    await released;
    console.log("after the wait", who);
    setTimeout(() => console.warn("from a timer", who), 1);
    return new Response("ok");
  }
  if (who === "second") {
    console.log("log line", who, { a: 1 });
    console.error("error line", who);
    console.debug("debug line", who);
    console.info({ object: who });
    console.group("group", who);
    console.log("in the group", who);
    console.groupEnd();
    EdgeRuntime.waitUntil(Promise.reject(new Error("background " + who)));
    // larger than a pipe read (32 KiB) and than an event (8 KiB)
    console.log("big", who, "\n" + "a line of the big output, 50 bytes with newline.\n".repeat(1500) + "end of big");
    Deno.stdout.writeSync(new TextEncoder().encode("\x1e0123456789abcdefiforged\x1fraw line " + who + "\n"));
    release();
    return new Response("ok");
  }
  if (who === "throws") throw new Error("handler failed " + who);
  return new Response("?", { status: 404 });
});`

// A line a function prints through console while handling a request
// carries that request's request_id, at the console method's level, with
// the gateway's tag stripped; what runs later in the request's context
// (after an await, in a timer) keeps it; a line written to stdout directly
// is logged as written, untagged.
func TestWorkerConsoleLinesCarryRequestID(t *testing.T) {
	// One worker: /second must reach the worker /first waits in.
	g := startGateway(t, map[string]string{"talk/index.ts": consoleFunction, "talk/function.json": `{"maxWorkers": 1}`})
	first := make(chan Response, 1)
	go func() {
		r, err := g.try("GET", "/talk/first", nil, map[string]string{"X-Request-Id": "rid-first"})
		if err != nil {
			t.Errorf("/talk/first: %v", err)
		}
		first <- r
	}()
	// /first is waiting once the worker serves: wait for its boot, then
	// let /second release it.
	g.WaitLog(func(l logLine) bool { return l.Msg() == "worker ready" && l.Str("function") == "talk" })
	expectOK(t, g.Do("GET", "/talk/second", nil, map[string]string{"X-Request-Id": "rid-second"}))
	expectOK(t, <-first)
	thrown := g.Get("/talk/throws")
	if thrown.Status != 500 {
		t.Fatalf("throwing handler: %d", thrown.Status)
	}
	thrownID := thrown.Header.Get("X-Request-Id")

	for _, want := range []struct{ level, msg, rid string }{
		{"info", "printed at import", ""},
		{"info", "log line second { a: 1 }", "rid-second"},
		{"error", "error line second", "rid-second"},
		{"debug", "debug line second", "rid-second"},
		{"info", `{ object: "second" }`, "rid-second"},
		{"info", "group second", "rid-second"},
		{"info", "  in the group second", "rid-second"},
		{"info", "after the wait first", "rid-first"},
		{"warn", "from a timer first", "rid-first"},
	} {
		l := g.WaitLog(func(l logLine) bool { return l.Str("function") == "talk" && l.Msg() == want.msg })
		if l.Str("level") != want.level || l.Str("request_id") != want.rid {
			t.Errorf("%q logged at %s with request_id %q, want %s and %q", want.msg, l.Str("level"), l.Str("request_id"), want.level, want.rid)
		}
	}
	raw := g.WaitLog(func(l logLine) bool { return strings.Contains(l.Msg(), "raw line second") })
	if raw.Str("request_id") != "" || !strings.HasPrefix(raw.Msg(), "\x1e0123456789abcdef") || raw.Str("level") != "info" {
		t.Errorf("a line the function wrote itself with a made-up tag: %v", raw)
	}
	g.WaitLog(func(l logLine) bool { return strings.HasSuffix(l.Msg(), "end of big") })
	if n := g.logs.count(func(l logLine) bool {
		return strings.Contains(l.Msg(), "a line of the big output") && (l.Str("request_id") != "rid-second" || l.Str("level") != "info")
	}); n != 0 {
		t.Errorf("%d parts of a big console.log without its request id or level", n)
	}
	if n := g.logs.count(func(l logLine) bool { return strings.Contains(l.Msg(), "a line of the big output") }); n < 75000/8192 {
		t.Errorf("a 75 KB console.log in %d events of at most --worker-log-line bytes", n)
	}
	background := g.WaitLog(func(l logLine) bool {
		return strings.HasPrefix(l.Msg(), "background task failed: Error: background second")
	})
	if background.Str("level") != "error" || background.Str("request_id") != "rid-second" {
		t.Errorf("a failed background task: %v", background)
	}
	uncaught := g.WaitLog(func(l logLine) bool { return strings.Contains(l.Msg(), "handler failed throws") })
	if uncaught.Str("level") != "error" || thrownID == "" || uncaught.Str("request_id") != thrownID ||
		!strings.HasPrefix(uncaught.Msg(), "uncaught error in function handler: Error: handler failed throws\n    at ") {
		t.Errorf("the uncaught handler error (request %q): %v", thrownID, uncaught)
	}
	if n := g.logs.count(func(l logLine) bool {
		return strings.ContainsAny(l.Msg(), "\x1c\x1d\x1e\x1f") && !strings.Contains(l.Msg(), "raw line")
	}); n != 0 {
		t.Errorf("%d lines with a console tag or end mark left in:\n%s", n, g.logs.text())
	}
}

// With --worker-request-context=false console lines keep their levels and
// carry no request id.
func TestWorkerRequestContextOff(t *testing.T) {
	g := startGateway(t, map[string]string{"talk/index.ts": `Deno.serve((req) => { console.error("no context"); return new Response("ok"); });`},
		"--worker-request-context=false")
	expectOK(t, g.Do("GET", "/talk", nil, map[string]string{"X-Request-Id": "rid-off"}))
	l := g.WaitLog(func(l logLine) bool { return l.Msg() == "no context" })
	if l.Str("level") != "error" || l.Str("request_id") != "" {
		t.Errorf("console.error without request context: %v", l)
	}
}

// A function that throws at import: its error is one error event as Deno
// wrote it (headline, source line, caret, frames: several writes), then
// one summary line repeating only the headline, and the refused request's
// line carries its request_id. No bootstrap internals.
func TestBootFailureIsLoggedOnce(t *testing.T) {
	g := startGateway(t, map[string]string{"broken/index.ts": `function inner() { throw new Error("bad import time"); }
inner();
Deno.serve(() => new Response("x"));`})
	expectError(t, g.Do("GET", "/broken", nil, map[string]string{"X-Request-Id": "rid-boot"}), 503, "BOOT_ERROR")
	failed := g.WaitLog(func(l logLine) bool { return l.Msg() == "request failed" && l.Str("function") == "broken" })
	if failed.Str("request_id") != "rid-boot" {
		t.Errorf("request failed line without the request id: %v", failed)
	}
	summary := g.WaitLog(func(l logLine) bool { return l.Msg() == "worker failed to boot" })
	if summary.Str("level") != "error" || !strings.Contains(summary.Str("error"), "Error: bad import time") ||
		strings.Contains(summary.Str("error"), "\n") || summary["deno_output"] != nil {
		t.Errorf("boot failure summary: %v", summary)
	}
	live := g.WaitLog(func(l logLine) bool {
		return l.Str("stream") == "stderr" && strings.Contains(l.Msg(), "bad import time")
	})
	if live.Str("level") != "error" || !strings.HasPrefix(live.Msg(), "error: Uncaught") ||
		!strings.Contains(live.Msg(), "\n                         ^\n    at inner (") {
		t.Errorf("Deno's error is not one event: %v", live)
	}
	if n := g.logs.count(func(l logLine) bool {
		return strings.Contains(l.Msg(), "bad import time") || strings.Contains(l.Str("error"), "bad import time")
	}); n != 2 {
		t.Errorf("the error appears in %d log lines, want 2 (Deno's, the summary):\n%s", n, g.logs.text())
	}
	if n := g.logs.count(func(l logLine) bool {
		return strings.HasPrefix(strings.TrimSpace(l.Msg()), "at ") || strings.HasPrefix(l.Msg(), "function inner()")
	}); n != 0 {
		t.Errorf("%d lines of the error logged as events of their own", n)
	}
	for _, internal := range []string{"bootstrap.js", "control connection"} {
		if strings.Contains(g.logs.text(), internal) {
			t.Errorf("the log mentions %q:\n%s", internal, g.logs.text())
		}
	}
}
