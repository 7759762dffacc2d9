package worker

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

// get calls path through an http.Client over w and returns status and body.
func get(t *testing.T, w *Worker, path string) (int, string) {
	t.Helper()
	c := http.Client{Transport: w}
	resp, err := c.Get("http://fn" + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

const echoCode = `
Deno.serve(async (req) => {
  const u = new URL(req.url);
  if (u.pathname === "/echo") return new Response(req.body, { headers: { "x-seen-host": u.host } });
  return new Response("hello " + u.pathname + u.search, { headers: { "x-method": req.method } });
});
`

func TestInlineCodeAnswersThroughHTTPClient(t *testing.T) {
	w := start(t, Options{Code: echoCode})
	if code, body := get(t, w, "/a/b?c=1"); code != 200 || body != "hello /a/b?c=1" {
		t.Fatalf("got %d %q", code, body)
	}

	// A request body of unknown length streams to the function and back.
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(payload); off += 64 << 10 {
			pw.Write(payload[off : off+64<<10])
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://example.test/echo", pr)
	resp, err := (&http.Client{Transport: w}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo: %d bytes back (want %d), err %v", len(got), len(payload), err)
	}
	if h := resp.Header.Get("X-Seen-Host"); h != "example.test" {
		t.Fatalf("the function saw host %q", h)
	}

	// The same worker through fasthttp.
	freq, fresp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(freq)
	defer fasthttp.ReleaseResponse(fresp)
	freq.SetRequestURI("/fast")
	freq.Header.SetMethod("PUT")
	if err := w.Do(freq, fresp); err != nil {
		t.Fatal(err)
	}
	if string(fresp.Body()) != "hello /fast" || string(fresp.Header.Peek("x-method")) != "PUT" {
		t.Fatalf("Do: %d %q", fresp.StatusCode(), fresp.Body())
	}
	// An absolute URI's host is the function's host; a streamed body goes
	// through.
	freq.SetRequestURI("http://h.example/echo")
	freq.SetBodyStream(strings.NewReader("abc"), -1)
	if err := w.Do(freq, fresp); err != nil {
		t.Fatal(err)
	}
	if string(fresp.Body()) != "abc" || string(fresp.Header.Peek("x-seen-host")) != "h.example" {
		t.Fatalf("Do: %d %q host %q", fresp.StatusCode(), fresp.Body(), fresp.Header.Peek("x-seen-host"))
	}
	st := w.Stats()
	if st.Requests != 4 || st.InFlight != 0 || st.Errors != 0 || st.PID != w.PID() || st.Exited {
		t.Fatalf("stats %+v", st)
	}
}

func TestFileAndURLEntries(t *testing.T) {
	dir := t.TempDir()
	entry := filepath.Join(dir, "main.ts")
	os.WriteFile(filepath.Join(dir, "data.txt"), []byte("from its folder"), 0o600)
	os.WriteFile(entry, []byte(`export default { async fetch() { return new Response(await Deno.readTextFile(new URL("./data.txt", import.meta.url))); } };`), 0o600)
	for _, o := range []Options{{File: entry}, {URL: "file://" + entry}} {
		w := start(t, o)
		if code, body := get(t, w, "/"); code != 200 || body != "from its folder" {
			t.Fatalf("%+v: got %d %q", o, code, body)
		}
	}
}

func TestOptionsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no entry", Options{}, "exactly one of"},
		{"two entries", Options{Code: "x", File: "y"}, "exactly one of"},
		{"bad scheme", Options{URL: "ftp://x/y.ts"}, "scheme"},
		{"missing file", Options{File: "/nonexistent/main.ts"}, "no such file"},
		{"bootstrap variable", Options{Code: "x", Env: map[string]string{"DENO_SERVE_ADDRESS": "tcp:1"}}, "set by edgeway"},
		{"edgeway variable", Options{Code: "x", Env: map[string]string{"EDGEWAY_CONTROL": "/x"}}, "set by edgeway"},
		{"unknown profile", Options{Code: "x", Permissions: []string{"everything"}}, "unknown permission profile"},
		{"not a flag", Options{Code: "x", Permissions: []string{"--allow-net", "--run-anything"}}, "permissions"},
		{"config is not deno.json", Options{Code: "x", Config: "testdata/import_map.json"}, "deno.json"},
		{"import map is a config", Options{Code: "x", ImportMap: "testdata/deno.json"}, "use Options.Config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Deno = "true" // never started
			_, err := Start(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestEnvHoldsOnlyWhatIsGiven(t *testing.T) {
	t.Setenv("EDGEWAY_TEST_HOST_ONLY", "host-value")
	w := start(t, Options{
		Env:  map[string]string{"GREETING": "hi"},
		Code: `Deno.serve(() => Response.json(Deno.env.toObject()))`,
	})
	_, body := get(t, w, "/")
	var env map[string]string
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if env["GREETING"] != "hi" {
		t.Fatalf("GREETING missing: %v", env)
	}
	for name := range env {
		switch name {
		case "GREETING", "DENO_DIR", "NO_COLOR", "DENO_NO_UPDATE_CHECK":
		case "PATH", "DENO_NODE_SHIM_ACTIVE":
			// Deno sets these itself (its Node compatibility shims), as
			// `env -i deno eval 'console.log(Deno.env.toObject())'` shows.
		default:
			t.Errorf("the worker sees %s, which it was not given", name)
		}
	}
}

func TestPermissionOutsideTheGrantIsRefused(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(outside, []byte("secret"), 0o600)
	code := `Deno.serve(async () => {
  const out = [];
  for (const f of [() => Deno.readTextFile(` + jsString(outside) + `), () => Deno.writeTextFile("./x.txt", "x"), () => new Deno.Command("/bin/true").output()]) {
    try { await f(); out.push("allowed"); } catch (e) { out.push(e.name); }
  }
  return new Response(out.join(","));
});`
	for _, tc := range []struct {
		perms []string
		want  string
	}{
		{nil, "NotCapable,NotCapable,NotCapable"},
		{[]string{"none"}, "NotCapable,NotCapable,NotCapable"},
		{[]string{"--allow-read=" + filepath.Dir(outside)}, "allowed,NotCapable,NotCapable"},
	} {
		w := start(t, Options{Code: code, Permissions: tc.perms})
		if _, body := get(t, w, "/"); body != tc.want {
			t.Errorf("permissions %v: got %q, want %q", tc.perms, body, tc.want)
		}
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestRequestTimeout(t *testing.T) {
	w := start(t, Options{RequestTimeout: time.Second, Code: `Deno.serve((req) =>
  new URL(req.url).pathname === "/hang" ? new Promise(() => {}) : new Response("still here"))`})
	c := http.Client{Transport: w}
	_, err := c.Get("http://fn/hang")
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	if _, body := get(t, w, "/"); body != "still here" {
		t.Fatalf("after a timeout: %q", body)
	}
	if st := w.Stats(); st.Errors != 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestShutdownDrains(t *testing.T) {
	l := newLogs()
	w := start(t, Options{OnLog: l.add, Code: `
let release;
const released = new Promise((r) => { release = r; });
addEventListener("beforeunload", (e) => { console.log("beforeunload " + e.detail.reason); release(); });
addEventListener("drain", () => console.log("drain"));
Deno.serve(async () => { await released; return new Response("finished"); });`})
	runDir := w.runDir
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Transport: w}).Get("http://fn/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{string(b), err}
	}()
	waitFor(t, "the request to be in flight", func() bool { return w.Stats().InFlight == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	r := <-done
	if r.err != nil || r.body != "finished" {
		t.Fatalf("the in-flight request got %q, %v", r.body, r.err)
	}
	l.wait(t, "beforeunload termination")
	l.wait(t, "drain")
	if _, err := (&http.Client{Transport: w}).Get("http://fn/"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Shutdown: %v, want ErrClosed", err)
	}
	if _, err := os.Stat(runDir); !os.IsNotExist(err) {
		t.Fatalf("the private folder is still there: %v", err)
	}
	if !errors.Is(w.Err(), ErrClosed) || !w.Stats().Exited {
		t.Fatalf("Err %v, stats %+v", w.Err(), w.Stats())
	}
}

func TestTerminateKills(t *testing.T) {
	w := start(t, Options{Code: `Deno.serve(() => new Promise(() => {}))`})
	pid := w.PID()
	errc := make(chan error, 1)
	go func() {
		_, err := (&http.Client{Transport: w}).Get("http://fn/")
		errc <- err
	}()
	waitFor(t, "the request to be in flight", func() bool { return w.Stats().InFlight == 1 })
	w.Terminate()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("the in-flight request got %v, want ErrClosed", err)
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Fatalf("process %d still exists: %v", pid, err)
	}
	// Shutdown after Terminate returns at once.
	if err := w.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWebSocketEcho(t *testing.T) {
	w := start(t, Options{Code: `Deno.serve((req) => {
  if (req.headers.get("upgrade") !== "websocket") return new Response("plain");
  if (new URL(req.url).pathname === "/refuse") return new Response("not here", { status: 426 });
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onmessage = (e) => socket.send("echo: " + e.data + " on " + new URL(req.url).pathname);
  return response;
});`})
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	conn, resp, err := w.DialWebSocket(ctx, "/chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if w.Stats().WebSockets != 1 {
		t.Fatalf("stats %+v", w.Stats())
	}
	conn.SetReadDeadline(time.Now().Add(eventTimeout))
	if err := conn.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := conn.ReadMessage()
	if err != nil || string(msg) != "echo: ping on /chat" {
		t.Fatalf("got %q, %v", msg, err)
	}
	conn.Close()
	if w.Stats().WebSockets != 0 {
		t.Fatalf("stats after close %+v", w.Stats())
	}
	// The function's refusal comes back as it answered.
	_, resp, err = w.DialWebSocket(ctx, "/refuse", nil)
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != 426 {
		t.Fatalf("refused upgrade: %v, %+v", err, resp)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "not here" {
		t.Fatalf("refusal body %q", b)
	}
	if n := w.Stats().WebSockets; n != 0 {
		t.Fatalf("a refused upgrade still counts: %d", n)
	}
	// A request asking to upgrade outside DialWebSocket is refused.
	req, _ := http.NewRequest("GET", "http://fn/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	if _, err := (&http.Client{Transport: w}).Do(req); !errors.Is(err, ErrUpgrade) {
		t.Fatalf("got %v, want ErrUpgrade", err)
	}
}

func TestCrashGivesAnError(t *testing.T) {
	w := start(t, Options{Code: `Deno.serve((req) => {
  if (new URL(req.url).pathname === "/crash") Deno.exit(3);
  return new Response("ok");
});`})
	_, err := (&http.Client{Transport: w}).Get("http://fn/crash")
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("the crashing request got %v", err)
	}
	waitExited(t, w)
	_, err = (&http.Client{Transport: w}).Get("http://fn/")
	if !errors.Is(err, ErrExited) || !errors.Is(w.Err(), ErrExited) {
		t.Fatalf("after the crash: %v (Err %v)", err, w.Err())
	}
	freq, fresp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	freq.SetRequestURI("/")
	if err := w.Do(freq, fresp); !errors.Is(err, ErrExited) {
		t.Fatalf("Do after the crash: %v", err)
	}
	if _, _, err := w.DialWebSocket(context.Background(), "/", nil); !errors.Is(err, ErrExited) {
		t.Fatalf("DialWebSocket after the crash: %v", err)
	}
}

func TestMemoryLimit(t *testing.T) {
	w := start(t, Options{MemoryLimitMB: 32, Code: `Deno.serve(() => {
  const keep = [];
  for (;;) keep.push(new Array(1e5).fill({ a: Math.random() }));
});`})
	_, err := (&http.Client{Transport: w}).Get("http://fn/")
	if !errors.Is(err, ErrMemoryLimit) || !errors.Is(err, ErrExited) {
		t.Fatalf("got %v, want ErrMemoryLimit", err)
	}
}

func TestMaxDuration(t *testing.T) {
	l := newLogs()
	w := start(t, Options{MaxDuration: 500 * time.Millisecond, OnLog: l.add, Code: `
addEventListener("beforeunload", (e) => console.log("beforeunload " + e.detail.reason));
Deno.serve(() => new Response("ok"));`})
	waitExited(t, w)
	l.wait(t, "beforeunload wall_clock")
	if err := w.Err(); !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "MaxDuration") {
		t.Fatalf("Err %v", err)
	}
}

func TestBootFailureCarriesStderr(t *testing.T) {
	_, err := Start(context.Background(), Options{Deno: testDeno(t), Code: `throw new Error("no luck at boot")`})
	if err == nil || !strings.Contains(err.Error(), "no luck at boot") {
		t.Fatalf("got %v", err)
	}
}

func TestImportMapAndLogMasking(t *testing.T) {
	lib := t.TempDir()
	os.WriteFile(filepath.Join(lib, "greet.ts"), []byte(`export const greet = (n: string) => "hi " + n;`), 0o600)
	mapFile := filepath.Join(t.TempDir(), "import_map.json")
	os.WriteFile(mapFile, []byte(`{"imports": {"greet": "`+"file://"+filepath.Join(lib, "greet.ts")+`"}}`), 0o600)
	l := newLogs()
	w := start(t, Options{
		ImportMap: mapFile,
		Env:       map[string]string{"API_SECRET": "very-secret-value"},
		OnLog:     l.add,
		Code: `import { greet } from "greet";
console.log("secret is " + Deno.env.get("API_SECRET"));
Deno.serve(() => new Response(greet("you")));`,
	})
	if _, body := get(t, w, "/"); body != "hi you" {
		t.Fatalf("got %q", body)
	}
	l.wait(t, "secret is ***")
}

func TestHTTPURLEntry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/typescript")
		io.WriteString(rw, `export default { fetch: () => new Response("served from " + import.meta.url) };`)
	}))
	defer srv.Close()
	w := start(t, Options{URL: srv.URL + "/mod.ts"})
	if _, body := get(t, w, "/"); body != "served from "+srv.URL+"/mod.ts" {
		t.Fatalf("got %q", body)
	}
}

func TestShutdownDeadlineKills(t *testing.T) {
	w := start(t, Options{Code: `Deno.serve(() => new Promise(() => {}))`})
	errc := make(chan error, 1)
	go func() {
		_, err := (&http.Client{Transport: w}).Get("http://fn/")
		errc <- err
	}()
	waitFor(t, "the request to be in flight", func() bool { return w.Stats().InFlight == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := w.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's deadline", err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("the in-flight request got %v, want ErrClosed", err)
	}
	if err := syscall.Kill(w.PID(), 0); err != syscall.ESRCH {
		t.Fatalf("process still exists: %v", err)
	}
}

func TestCancelledBootKillsTheProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The function never serves: only the cancel can end this boot (its
	// timeout is far beyond the test's).
	_, err := Start(ctx, Options{
		Deno:        testDeno(t),
		BootTimeout: time.Hour,
		Code:        `console.log("booting"); setInterval(() => {}, 1000);`,
		OnLog: func(_, line string) {
			if line == "booting" {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestResponseBodyStreams(t *testing.T) {
	w := start(t, Options{Code: `
let release;
const released = new Promise((r) => { release = r; });
const enc = new TextEncoder();
Deno.serve((req) => {
  if (new URL(req.url).pathname === "/release") { release(); return new Response("released"); }
  return new Response(new ReadableStream({
    async start(c) { c.enqueue(enc.encode("first\n")); await released; c.enqueue(enc.encode("second\n")); c.close(); },
  }));
});`})
	c := http.Client{Transport: w}
	resp, err := c.Get("http://fn/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	// The first chunk arrives while the function still holds the rest.
	if line, err := br.ReadString('\n'); line != "first\n" || err != nil {
		t.Fatalf("first chunk %q, %v", line, err)
	}
	if n := w.Stats().InFlight; n != 1 {
		t.Fatalf("in flight while streaming: %d", n)
	}
	if _, body := get(t, w, "/release"); body != "released" {
		t.Fatalf("release: %q", body)
	}
	rest, err := io.ReadAll(br)
	if string(rest) != "second\n" || err != nil {
		t.Fatalf("rest %q, %v", rest, err)
	}
	resp.Body.Close()
	if n := w.Stats().InFlight; n != 0 {
		t.Fatalf("in flight after the body: %d", n)
	}
}

func TestConcurrentCalls(t *testing.T) {
	w := start(t, Options{Code: echoCode})
	c := http.Client{Transport: w}
	const clients, each = 16, 25
	errc := make(chan error, clients)
	for i := range clients {
		go func() {
			for j := range each {
				path := "/c" + strconv.Itoa(i) + "/" + strconv.Itoa(j)
				resp, err := c.Get("http://fn" + path)
				if err != nil {
					errc <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != "hello "+path {
					errc <- fmt.Errorf("%s: %q, %v", path, b, err)
					return
				}
			}
			errc <- nil
		}()
	}
	for range clients {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if st := w.Stats(); st.Requests != clients*each || st.InFlight != 0 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDenoConfig(t *testing.T) {
	cfgDir := t.TempDir()
	os.WriteFile(filepath.Join(cfgDir, "greet.ts"), []byte(`export const greet = (n: string) => "hello " + n;`), 0o600)
	cfg := filepath.Join(cfgDir, "deno.json")
	os.WriteFile(cfg, []byte(`{"imports": {"greet": "./greet.ts"}}`), 0o600)
	w := start(t, Options{Config: cfg, Code: `import { greet } from "greet";
Deno.serve(() => new Response(greet("config")));`})
	if _, body := get(t, w, "/"); body != "hello config" {
		t.Fatalf("got %q", body)
	}
}

func TestShutdownLetsBackgroundTasksSettle(t *testing.T) {
	l := newLogs()
	w := start(t, Options{OnLog: l.add, Code: `
let release;
const released = new Promise((r) => { release = r; });
addEventListener("drain", () => release());
Deno.serve(() => {
  EdgeRuntime.waitUntil((async () => { await released; console.log("task done"); })());
  return new Response("accepted");
});`})
	if _, body := get(t, w, "/"); body != "accepted" {
		t.Fatalf("got %q", body)
	}
	waitFor(t, "the task to be reported", func() bool { return w.Stats().BackgroundTasks == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.lines, "stdout: task done") {
		t.Fatalf("the background task did not finish before the exit: %q", l.lines)
	}
}
