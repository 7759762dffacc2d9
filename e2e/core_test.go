package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// echoURL reports what the function saw: its URL, path+query and headers.
const echoURL = `Deno.serve((req) => {
  const u = new URL(req.url);
  return Response.json({ url: req.url, host: u.host, pathq: u.pathname + u.search, headers: Object.fromEntries(req.headers), pid: Deno.pid });
});
`

func TestHandlerStyles(t *testing.T) {
	g := startGateway(t, map[string]string{
		"plain/index.ts":   `Deno.serve((_req) => new Response("plain"));`,
		"opts/index.ts":    `Deno.serve({ port: 9999, onListen() {} }, (_req) => new Response("opts"));`,
		"object/index.ts":  `Deno.serve({ handler: (_req) => new Response("object") });`,
		"default/index.ts": `export default { fetch(_req: Request) { return new Response("default"); } };`,
		"jsfn/index.js":    `Deno.serve(() => new Response("js"));`,
		"mjsfn/index.mjs":  `export default { fetch: () => new Response("mjs") };`,
	})
	for path, want := range map[string]string{"/plain": "plain", "/opts": "opts", "/object": "object", "/default": "default", "/jsfn": "js", "/mjsfn": "mjs"} {
		r := g.Get(path)
		if r.Status != 200 || string(r.Body) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, r.Status, r.Body, want)
		}
	}
}

func TestPathAndQueryOnBothRoutes(t *testing.T) {
	g := startGateway(t, map[string]string{"echo/index.ts": echoURL})
	cases := []struct{ path, want string }{
		{"/functions/v1/echo", "/echo"},
		{"/functions/v1/echo/", "/echo/"},
		{"/functions/v1/echo/a/b?x=1%2F&y=%20z&y=2", "/echo/a/b?x=1%2F&y=%20z&y=2"},
		{"/functions/v1/echo?q=1", "/echo?q=1"},
		{"/echo", "/"},
		{"/echo/", "/"},
		{"/echo?q=1&r", "/?q=1&r"},
		{"/echo/a/b/?x=%2E%2E", "/a/b/?x=%2E%2E"},
		{"/echo/deep/path/with%20space", "/deep/path/with%20space"},
	}
	for _, c := range cases {
		r := g.Get(c.path)
		if r.Status != 200 {
			t.Fatalf("GET %s: status %d %q", c.path, r.Status, r.Body)
		}
		if got := r.JSON(t)["pathq"]; got != c.want {
			t.Errorf("GET %s: function saw %q, want %q", c.path, got, c.want)
		}
	}
	r := g.Do("GET", "/echo/x", nil, map[string]string{"Host": "api.example.com:8443"})
	m := r.JSON(t)
	if m["url"] != "http://api.example.com:8443/x" {
		t.Errorf("req.url = %v, want the client's Host", m["url"])
	}
	h := m["headers"].(map[string]any)
	if h["x-forwarded-host"] != "api.example.com:8443" || h["x-forwarded-proto"] != "http" || h["x-forwarded-for"] != "127.0.0.1" {
		t.Errorf("forwarding headers = %v", h)
	}
}

func TestUnknownAndInvalidNames(t *testing.T) {
	g := startGateway(t, map[string]string{
		"hello/index.ts":     `Deno.serve(() => new Response("hi"));`,
		"_shared/x.ts":       `export const x = 1;`,
		"1bad/index.ts":      `Deno.serve(() => new Response("never"));`,
		"noindex/readme.txt": `not a function`,
	})
	for _, p := range []string{"/nope", "/functions/v1/nope", "/_shared", "/functions/v1/_shared/x.ts", "/1bad", "/noindex", "/functions/v1/", "/%68ello", "/functions/v1/hello%2F..%2Fx"} {
		expectError(t, g.Get(p), 404, "NOT_FOUND")
	}
	r := g.Get("/")
	if r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"status":"ok"}` {
		t.Errorf("GET / = %d %q", r.Status, r.Body)
	}
}

func TestBinaryPostEchoedByteForByte(t *testing.T) {
	g := startGateway(t, map[string]string{
		"echo/index.ts": `Deno.serve(async (req) => new Response(await req.arrayBuffer(), { headers: { "content-type": "application/octet-stream" } }));`,
		"pipe/index.ts": `Deno.serve((req) => new Response(req.body));`,
	})
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	for _, path := range []string{"/echo", "/functions/v1/pipe"} {
		r := g.Do("POST", path, bytes.NewReader(payload), map[string]string{"Content-Type": "application/octet-stream"})
		if r.Status != 200 || !bytes.Equal(r.Body, payload) {
			t.Fatalf("POST %s: status %d, %d bytes back, equal=%v", path, r.Status, len(r.Body), bytes.Equal(r.Body, payload))
		}
	}
	// Chunked upload (no Content-Length) streams through as well.
	pr, pw := io_Pipe()
	go func() {
		for i := 0; i < 16; i++ {
			pw.Write(payload[i<<16 : (i+1)<<16])
		}
		pw.Close()
	}()
	r := g.Do("POST", "/pipe", pr, nil)
	if !bytes.Equal(r.Body, payload) {
		t.Fatalf("chunked upload: %d bytes back", len(r.Body))
	}
}

// sseReleaseFn sends one event, then waits for /stream/next before the
// next: had anything buffered the stream, the first event could never be
// read before "next" is requested.
const sseReleaseFn = `
let release: (() => void) | null = null;
Deno.serve((req) => {
  if (new URL(req.url).pathname === "/next") { release?.(); return new Response("ok"); }
  const enc = new TextEncoder();
  let n = 0;
  return new Response(new ReadableStream({
    async pull(c) {
      if (n === 3) return c.close();
      if (n > 0) await new Promise<void>((r) => (release = r));
      n++;
      c.enqueue(enc.encode("data: " + n + "\n\n"));
    },
  }), { headers: { "content-type": "text/event-stream" } });
});`

func TestServerSentEventsArriveOneByOne(t *testing.T) {
	// The function sends one event, then waits for /stream/next before the
	// next. Had the gateway buffered the stream, the first event could never
	// be read before "next" is requested.
	g := startGateway(t, map[string]string{"stream/index.ts": sseReleaseFn})
	resp, err := client.Get(g.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content-type %q", resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	for i := 1; i <= 3; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n') // blank line ending the event
		if i < 3 {
			if r := g.Get("/stream/next"); r.Status != 200 {
				t.Fatalf("next: %d", r.Status)
			}
		}
	}
}

func TestMultipleSetCookieAndHeadersPass(t *testing.T) {
	g := startGateway(t, map[string]string{"cookies/index.ts": `Deno.serve(() => {
  const h = new Headers({ "x-custom": "yes", "content-type": "text/plain" });
  h.append("set-cookie", "a=1; Path=/");
  h.append("set-cookie", "b=2; HttpOnly");
  h.append("set-cookie", "c=3; Max-Age=60");
  return new Response("teapot", { status: 418, headers: h });
});`})
	r := g.Get("/cookies")
	if r.Status != 418 || string(r.Body) != "teapot" || r.Header.Get("X-Custom") != "yes" {
		t.Fatalf("got %d %q %v", r.Status, r.Body, r.Header)
	}
	cookies := r.Header.Values("Set-Cookie")
	if len(cookies) != 3 {
		t.Fatalf("Set-Cookie = %q, want 3", cookies)
	}
	if r.Header.Get("X-Edgeway-Error") != "" {
		t.Fatal("a function's own response must not look like a gateway error")
	}
}

func TestFunctionErrorStatusesPassThrough(t *testing.T) {
	g := startGateway(t, map[string]string{"status/index.ts": `Deno.serve((req) => {
  const code = Number(new URL(req.url).searchParams.get("code"));
  return new Response(JSON.stringify({ mine: code }), { status: code, headers: { "x-edgeway-error": "FORGED" } });
});`})
	for _, code := range []int{400, 401, 404, 500, 502, 503} {
		r := g.Get(fmt.Sprintf("/status?code=%d", code))
		if r.Status != code || r.JSON(t)["mine"] != float64(code) {
			t.Errorf("code %d: got %d %q", code, r.Status, r.Body)
		}
		if r.Header.Get("X-Edgeway-Error") != "" {
			t.Errorf("code %d: function forged x-edgeway-error", code)
		}
	}
}

func TestForgedInternalHeadersHaveNoEffect(t *testing.T) {
	// A direct client, not a proxy: loopback is trusted by default.
	g := startGateway(t, map[string]string{"echo/index.ts": echoURL}, "--trusted-proxies", "none")
	r := g.Do("GET", "/echo", nil, map[string]string{
		"X-Edgeway-Worker":  "1",
		"x-edgeway-error":   "forged",
		"X-Edgeway-Seq":     "forged",
		"X-Auth-Claims":     "eyJzdWIiOiJhZG1pbiJ9",
		"X-Forwarded-For":   "6.6.6.6",
		"X-Forwarded-Host":  "evil.example",
		"X-Forwarded-Proto": "https",
		"Connection":        "keep-alive, X-Secret-Hop",
		"X-Secret-Hop":      "drop me",
		"Keep-Alive":        "timeout=5",
		"Upgrade":           "h2c",
	})
	h := r.JSON(t)["headers"].(map[string]any)
	for k := range h {
		if k == "x-edgeway-seq" {
			// The gateway's own number for aborts on a pipelined worker
			// connection (upstream/pipeabort.go), never the client's.
			if _, err := strconv.ParseUint(fmt.Sprint(h[k]), 10, 64); err != nil {
				t.Errorf("function saw x-edgeway-seq %v, want the gateway's number", h[k])
			}
			continue
		}
		if strings.HasPrefix(k, "x-edgeway-") || k == "x-auth-claims" || k == "x-secret-hop" || k == "keep-alive" || k == "upgrade" {
			t.Errorf("function saw forbidden header %s: %v", k, h[k])
		}
	}
	if h["x-forwarded-for"] != "127.0.0.1" || h["x-forwarded-proto"] != "http" {
		t.Errorf("forwarding headers were spoofable: %v", h)
	}
}

func TestSharedImportsAndNpm(t *testing.T) {
	g := startGateway(t, map[string]string{
		"_shared/greet.ts": `export const greet = (n: string) => "hello " + n;`,
		"uses/lib.ts":      `export { greet } from "../_shared/greet.ts";`,
		"uses/index.ts":    `import { greet } from "./lib.ts"; Deno.serve(() => new Response(greet("shared")));`,
		"npm/index.ts":     `import isNumber from "npm:is-number@7.0.0"; Deno.serve(() => Response.json({ five: isNumber(5), word: isNumber("x") }));`,
	})
	if r := g.Get("/uses"); r.Status != 200 || string(r.Body) != "hello shared" {
		t.Fatalf("shared import: %d %q", r.Status, r.Body)
	}
	r := g.Get("/npm")
	if r.Status != 200 {
		t.Fatalf("npm import: %d %q", r.Status, r.Body)
	}
	if m := r.JSON(t); m["five"] != true || m["word"] != false {
		t.Fatalf("npm import result %v", m)
	}
}

func TestSupabaseConfigToml(t *testing.T) {
	g := startGateway(t, map[string]string{
		"on/index.ts":       `Deno.serve(() => new Response("on"));`,
		"off/index.ts":      `Deno.serve(() => new Response("off"));`,
		"moved/index.ts":    `Deno.serve(() => new Response("index"));`,
		"moved/main.ts":     `Deno.serve(() => new Response("main"));`,
		"../config.toml":    "[functions.off]\nenabled = false\n\n[functions.moved]\nentrypoint = \"./functions/moved/main.ts\"\n",
		"../unrelated.toml": "x = 1",
	})
	if r := g.Get("/on"); string(r.Body) != "on" {
		t.Errorf("on: %q", r.Body)
	}
	expectError(t, g.Get("/off"), 404, "NOT_FOUND")
	if r := g.Get("/moved"); string(r.Body) != "main" {
		t.Errorf("entrypoint override: %q", r.Body)
	}
}

func TestBootErrorWhileOthersServe(t *testing.T) {
	g := startGateway(t, map[string]string{
		"broken/index.ts":    `Deno.serve(() => new Response("x")`, // syntax error
		"badimport/index.ts": `import "./missing.ts"; Deno.serve(() => new Response("x"));`,
		"noserve/index.ts":   `console.log("I never call Deno.serve");`,
		"hello/index.ts":     `Deno.serve(() => new Response("hi"));`,
	}, "--boot-timeout", "3s")
	expectError(t, g.Get("/broken"), 503, "BOOT_ERROR")
	expectError(t, g.Get("/badimport"), 503, "BOOT_ERROR")
	if r := g.Get("/hello"); r.Status != 200 {
		t.Fatalf("hello while others are broken: %d", r.Status)
	}
	expectError(t, g.Get("/noserve"), 503, "BOOT_ERROR")
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "worker failed to boot" && l.Str("function") == "broken" && strings.Contains(l.Str("error"), "Expected")
	})
	// The reason says what happened to the worker, not the control
	// channel's internals ("control connection: EOF").
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "worker failed to boot" && l.Str("function") == "broken" && l.Str("reason") == "the worker exited during boot (exit status 1)"
	})
	// The reason is logged, not sent.
	if r := g.Get("/broken"); strings.Contains(string(r.Body), "Expected") || strings.Contains(string(r.Body), "index.ts") {
		t.Fatalf("boot error details leaked to the client: %q", r.Body)
	}
	if r := g.Get("/hello"); r.Status != 200 {
		t.Fatalf("hello after boot errors: %d", r.Status)
	}
}

func TestWorkerExitMidRequestThenRecovers(t *testing.T) {
	g := startGateway(t, map[string]string{"fragile/index.ts": `Deno.serve((req) => {
  if (new URL(req.url).pathname === "/die") Deno.exit(3);
  return Response.json({ pid: Deno.pid });
});`})
	first := g.Get("/fragile").JSON(t)["pid"]
	expectError(t, g.Get("/fragile/die"), 502, "WORKER_ERROR")
	r := g.Get("/fragile")
	if r.Status != 200 {
		t.Fatalf("after crash: %d %q", r.Status, r.Body)
	}
	if r.JSON(t)["pid"] == first {
		t.Fatalf("expected a new worker after the crash, same pid %v", first)
	}
}

func TestCrashLoopRefusesThenOthersServe(t *testing.T) {
	g := startGateway(t, map[string]string{
		"crashy/index.ts": `Deno.serve(() => Deno.exit(1));`,
		"hello/index.ts":  `Deno.serve(() => new Response("hi"));`,
	}, "--crash-loop-threshold", "2", "--crash-loop-window", "1m", "--crash-loop-cooldown", "1m")
	died := func(l logLine) bool { return l.Msg() == "worker died" && l.Str("function") == "crashy" }
	for i := 1; i <= 3; i++ {
		expectError(t, g.Get("/crashy"), 502, "WORKER_ERROR")
		g.WaitLogCount(died, i) // the next request must meet a fresh worker
	}
	g.WaitLog(func(l logLine) bool { return strings.Contains(l.Msg(), "crash loop") })
	r := g.Get("/crashy")
	expectError(t, r, 503, "CRASH_LOOP")
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After = %q", ra)
	}
	if r := g.Get("/hello"); r.Status != 200 {
		t.Fatalf("other function during crash loop: %d", r.Status)
	}
}

func TestTimeoutThenSameWorkerServes(t *testing.T) {
	g := startGateway(t, map[string]string{"slow/index.ts": `Deno.serve(async (req) => {
  if (new URL(req.url).pathname === "/wait") await new Promise((r) => setTimeout(r, 30000));
  return Response.json({ pid: Deno.pid });
});`}, "--timeout", "2s")
	pid := g.Get("/slow").JSON(t)["pid"]
	expectError(t, g.Get("/slow/wait"), 504, "TIMEOUT")
	r := g.Get("/slow")
	if r.Status != 200 || r.JSON(t)["pid"] != pid {
		t.Fatalf("after timeout: %d %q, want the same worker %v", r.Status, r.Body, pid)
	}
}

func TestConcurrentRequestsAllAnswered(t *testing.T) {
	g := startGateway(t, map[string]string{"echo/index.ts": echoURL})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			path := fmt.Sprintf("/echo/r%d?i=%d", i, i)
			r, err := g.try("GET", path, nil, nil)
			if err != nil {
				errs <- err
				return
			}
			if r.Status != 200 {
				errs <- fmt.Errorf("%s: status %d", path, r.Status)
				return
			}
			if got := r.JSON(t)["pathq"]; got != fmt.Sprintf("/r%d?i=%d", i, i) {
				errs <- fmt.Errorf("%s: function saw %v", path, got)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSIGTERMLetsSlowRequestFinish(t *testing.T) {
	g := startGateway(t, map[string]string{"slow/index.ts": `Deno.serve(async () => {
  console.log("slow request started");
  await new Promise((r) => setTimeout(r, 1500));
  return new Response("finished");
});`})
	done := make(chan Response, 1)
	go func() { done <- g.Get("/slow") }()
	g.WaitLog(func(l logLine) bool { return l.Msg() == "slow request started" })
	g.Signal(syscall.SIGTERM)
	r := <-done
	if r.Status != 200 || string(r.Body) != "finished" {
		t.Fatalf("in-flight request during shutdown: %d %q", r.Status, r.Body)
	}
	if code := g.WaitExit(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	waitNoProcesses(t, g.RunDir)
	if _, err := os.Stat(g.RunDir); !os.IsNotExist(err) {
		t.Fatalf("runtime folder %s left behind", g.RunDir)
	}
}

func TestKill9LeavesNoWorkers(t *testing.T) {
	g := startGateway(t, map[string]string{
		"a/index.ts": `Deno.serve(() => new Response("a"));`,
		"b/index.ts": `Deno.serve(() => new Response("b"));`,
	})
	g.Get("/a")
	g.Get("/b")
	if n := len(g.WorkerPIDs()); n != 2 {
		t.Fatalf("expected 2 workers, found %d", n)
	}
	g.Signal(syscall.SIGKILL)
	g.WaitExit()
	waitNoProcesses(t, g.RunDir)
}

func TestStartupErrorsNameTheCulprit(t *testing.T) {
	bin := binPath(t)
	deno := denoPath(t)
	good := t.TempDir()
	writeTree(t, good, map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`})
	badJSON := t.TempDir()
	writeTree(t, badJSON, map[string]string{"f/index.ts": `x`, "f/function.json": `{"maxWorkers": "two"}`})
	unknownField := t.TempDir()
	writeTree(t, unknownField, map[string]string{"f/index.ts": `x`, "f/function.json": `{"maxWorkerz": 2}`})
	badToml := t.TempDir()
	writeTree(t, badToml, map[string]string{"functions/f/index.ts": `x`, "config.toml": "[functions.f]\nenabled = maybe\n"})

	busy := launch(t, good, "--port", "0")
	if err := busy.waitListening(); err != nil {
		t.Fatal(err)
	}
	busyPort := busy.URL[strings.LastIndex(busy.URL, ":")+1:]

	cases := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"missing folder", []string{"--functions", "/nonexistent/fns"}, nil, []string{"functions folder", "/nonexistent/fns"}},
		{"deno missing", []string{"--functions", good, "--deno", "/nonexistent/deno"}, nil, []string{"--deno"}},
		{"port taken", []string{"--functions", good, "--port", busyPort}, nil, []string{"--port", busyPort}},
		{"bad function.json type", []string{"--functions", badJSON}, nil, []string{filepath.Join(badJSON, "f", "function.json"), "maxWorkers"}},
		{"unknown function.json field", []string{"--functions", unknownField}, nil, []string{"function.json", "maxWorkerz"}},
		{"bad config.toml", []string{"--functions", filepath.Join(badToml, "functions")}, nil, []string{filepath.Join(badToml, "config.toml")}},
		{"bad duration flag", []string{"--functions", good, "--timeout", "soon"}, nil, []string{"--timeout"}},
		{"bad env var", []string{"--functions", good}, []string{"EDGEWAY_BOOT_TIMEOUT=never"}, []string{"EDGEWAY_BOOT_TIMEOUT"}},
		{"unknown flag", []string{"--functions", good, "--no-such-flag"}, nil, []string{"no-such-flag"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"serve", "--deno", deno, "--port", "0", "--auth", "none"}, c.args...)
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), c.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("expected a startup error, got success: %s", out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one line, got %d: %s", len(lines), out)
			}
			for _, w := range c.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("error %q does not name %q", lines[0], w)
				}
			}
		})
	}
}

func TestEnvVarsConfigureAndFlagsWin(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"slow/index.ts": `Deno.serve(async () => { await new Promise((r) => setTimeout(r, 30000)); return new Response("late"); });`})
	t.Setenv("EDGEWAY_TIMEOUT", "1s")
	g := launch(t, dir)
	if err := g.waitListening(); err != nil {
		t.Fatal(err)
	}
	expectError(t, g.Get("/slow"), 504, "TIMEOUT")

	t.Setenv("EDGEWAY_PORT", "1") // a flag beats the variable: --port 0 from launch wins
	g2 := launch(t, dir)
	if err := g2.waitListening(); err != nil {
		t.Fatalf("flag did not win over EDGEWAY_PORT: %v", err)
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	out, err := exec.Command(binPath(t), "help").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"--functions", "--host", "--port", "--deno", "--timeout", "--boot-timeout", "--shutdown-grace", "--log-level", "--log-format", "./supabase/functions", "127.0.0.1", "3100", "150s", "15s", "10s"} {
		if !strings.Contains(string(out), f) {
			t.Errorf("help does not mention %s", f)
		}
	}
	v, err := exec.Command(binPath(t), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(v), "edgeway ") {
		t.Errorf("version: %q %v", v, err)
	}
}

var _ = http.MethodGet
