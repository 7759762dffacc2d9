package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The gateway survives its own bugs and its environment (issue 15, "the
// whole gateway must survive").

var faultBin struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// faultBinary builds the gateway with the test-only fault hook
// (-tags edgeway_faults) once per test run: the released binary has no
// such hook. EDGEWAY_FAULTS_BIN names a prebuilt one instead.
func faultBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("EDGEWAY_FAULTS_BIN"); p != "" {
		return p
	}
	faultBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "edgeway-faults-bin")
		if err != nil {
			faultBin.err = err
			return
		}
		faultBin.path = filepath.Join(dir, "edgeway-faults")
		cmd := exec.Command("go", "build", "-tags", "edgeway_faults", "-o", faultBin.path, ".")
		cmd.Dir = ".."
		faultBin.out, faultBin.err = cmd.CombinedOutput()
	})
	if faultBin.err != nil {
		t.Fatalf("build the fault-injection binary: %v\n%s", faultBin.err, faultBin.out)
	}
	return faultBin.path
}

// rawGet sends one GET on a fresh connection and returns the response.
func rawGet(t *testing.T, g *Gateway, path string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

func TestPanicOnARequestIsContained(t *testing.T) {
	t.Setenv("EDGEWAY_BIN", faultBinary(t))
	g := startGateway(t, map[string]string{
		"hello/index.ts": `Deno.serve(() => new Response("hi"));`,
	}, "--internal-key", internalKey)
	if r := g.Get("/hello"); r.Status != 200 {
		t.Fatalf("warm-up: %d %q", r.Status, r.Body)
	}
	pids := g.WorkerPIDs()
	const panics = 5
	for i := 0; i < panics; i++ {
		resp := rawGet(t, g, "/__edgeway_fault/panic")
		var e Response
		e.Status, e.Header = resp.StatusCode, resp.Header
		e.Body = readAll(t, resp)
		expectError(t, e, 500, "INTERNAL")
		if !resp.Close {
			t.Fatalf("a panicked request's connection must close; header %v", resp.Header)
		}
	}
	// The gateway and its worker are still there.
	if r := g.Get("/hello"); r.Status != 200 || string(r.Body) != "hi" {
		t.Fatalf("after the panics: %d %q", r.Status, r.Body)
	}
	if now := g.WorkerPIDs(); len(pids) == 0 || len(now) != len(pids) || now[0] != pids[0] {
		t.Fatalf("workers changed across the panics: %v → %v", pids, now)
	}
	m := scrape(t, g, "")
	expectMetrics(t, m, map[string]float64{`edgeway_panics_total{where="request"}`: panics})
	// The stack is logged once, not once per panic: once the access log
	// line of the last request is out, every earlier line is.
	g.WaitLogCount(func(l logLine) bool { return l.Msg() == "request" }, 2)
	stacks := g.logs.count(func(l logLine) bool { return l.Msg() == "recovered from a panic" })
	if stacks != 1 {
		t.Fatalf("%d stacks logged for %d panics at one site, want 1", stacks, panics)
	}
	line := g.WaitLog(func(l logLine) bool { return l.Msg() == "recovered from a panic" })
	if !strings.Contains(line.Str("stack"), "injectFault") || line.Str("where") != "request" {
		t.Fatalf("panic log line lacks the stack or where: %v", line)
	}
}

// The released binary has no fault hook: the path is an ordinary 404.
func TestReleasedBinaryHasNoFaultHook(t *testing.T) {
	g := startGateway(t, map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`})
	expectError(t, g.Get("/__edgeway_fault/panic"), 404, "NOT_FOUND")
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

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

// launchWithStderr starts the binary with stderr going to the given file
// and returns once it logs that it listens (read from logs, which the
// test then stops reading). wrap may rewrite the command (e.g. a shell
// that lowers a limit first).
func launchWithStderr(t *testing.T, files map[string]string, stderr *os.File, logs *bufio.Reader, wrap func(bin string, args []string) *exec.Cmd, args ...string) *Gateway {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "functions")
	writeTree(t, dir, files)
	full := append([]string{"serve", "--functions", dir, "--port", "0", "--deno", denoPath(t), "--log-format", "json", "--log-level", "debug", "--auth", "none", "--rate-limit", "0"}, args...)
	var cmd *exec.Cmd
	if wrap != nil {
		cmd = wrap(binPath(t), full)
	} else {
		cmd = exec.Command(binPath(t), full...)
	}
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.Stderr = stderr
	cmd.Stdout = io.Discard
	g := &Gateway{t: t, cmd: cmd, Dir: dir, logs: newLogSink(), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stderr.Close() // the child holds it now
	go func() {
		g.exitErr = cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-g.exited:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-g.exited:
			case <-time.After(eventTimeout):
				cmd.Process.Kill()
				<-g.exited
			}
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.logs.text())
		}
	})
	deadline := time.Now().Add(eventTimeout)
	var seen strings.Builder
	for time.Now().Before(deadline) {
		line, err := logs.ReadString('\n')
		seen.WriteString(line)
		if err != nil {
			t.Fatalf("gateway did not start: %v\n%s", err, seen.String())
		}
		var l logLine
		json.Unmarshal([]byte(line), &l)
		if l.Msg() == "edgeway listening" {
			g.logs.consume(strings.NewReader(seen.String())) // keep what was read
			g.URL = "http://" + l.Str("addr")
			g.RunDir = l.Str("run_dir")
			return g
		}
	}
	t.Fatal("gateway did not start")
	return nil
}

// A stderr nobody reads must not stop the gateway: requests and worker
// output keep flowing, the excess log lines are dropped and counted.
func TestStuckLogPipeNeverBlocksRequests(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The smallest pipe (one page) fills after a few lines.
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, w.Fd(), 1031 /* F_SETPIPE_SZ */, 4096); errno != 0 {
		t.Fatalf("F_SETPIPE_SZ: %v", errno)
	}
	logs := bufio.NewReader(r)
	g := launchWithStderr(t, map[string]string{
		// Each request also writes a worker log line.
		"chatty/index.ts": `Deno.serve(() => { console.log("chatty " + "x".repeat(300)); return new Response("ok"); });`,
	}, w, logs, nil, "--internal-key", internalKey, "--log-buffer-size", "4096", "--log-max-buffered", "8KiB")
	// From here on nobody reads the gateway's stderr.
	hc := &http.Client{Timeout: eventTimeout}
	const requests, clients = 400, 4
	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < requests/clients; i++ {
				resp, err := hc.Get(g.URL + "/chatty")
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "ok" {
					errs <- fmt.Errorf("status %d %q", resp.StatusCode, body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a request with the log pipe stuck: %v", err)
	}
	m := scrape(t, &Gateway{t: t, URL: g.URL}, "")
	if m["edgeway_log_dropped_total"] == 0 {
		t.Fatal("no log line counted as dropped with the pipe stuck")
	}
	// Once stderr is read again, logging resumes and reports the drop.
	go g.logs.consume(logs)
	g.WaitLog(func(l logLine) bool { return strings.HasPrefix(l.Msg(), "log lines dropped") && l.Int("dropped") > 0 })
}

// Running out of file descriptors must not end the gateway: accept sheds
// and retries, and once descriptors free up it serves again.
func TestRunningOutOfDescriptorsKeepsServing(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	logs := bufio.NewReader(r)
	// A hard limit of 96 descriptors: the gateway cannot raise it.
	lowLimit := func(bin string, args []string) *exec.Cmd {
		return exec.Command("bash", append([]string{"-c", `ulimit -n 96 && exec "$0" "$@"`, bin}, args...)...)
	}
	g := launchWithStderr(t, map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`},
		w, logs, lowLimit, "--internal-key", internalKey)
	go g.logs.consume(logs)
	warn := g.WaitLog(func(l logLine) bool { return strings.HasPrefix(l.Msg(), "the file descriptor limit") })
	if warn.Int("limit") != 96 {
		t.Fatalf("startup warning names limit %d, want 96", warn.Int("limit"))
	}
	if r := g.Get("/hello"); r.Status != 200 {
		t.Fatalf("before: %d %q", r.Status, r.Body)
	}
	// Hold connections until the gateway has run out and says so.
	var held []net.Conn
	addr := strings.TrimPrefix(g.URL, "http://")
	exhausted := make(chan struct{})
	go func() {
		g.WaitLog(func(l logLine) bool { return strings.HasPrefix(l.Msg(), "out of file descriptors") })
		close(exhausted)
	}()
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
open:
	for i := 0; i < 1000; i++ {
		select {
		case <-exhausted:
			break open
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		held = append(held, c)
	}
	select {
	case <-exhausted:
	case <-time.After(eventTimeout):
		t.Fatalf("the gateway never ran out of descriptors with %d connections held", len(held))
	}
	select {
	case <-g.exited:
		t.Fatalf("the gateway exited when descriptors ran out: %v", g.exitErr)
	default:
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	// Shedding may still close a connection or two while the gateway's
	// descriptors are being released: retry those until the deadline.
	deadline := time.Now().Add(eventTimeout)
	for {
		r, err := g.try("GET", "/hello", nil, nil)
		if err == nil {
			if r.Status != 200 || string(r.Body) != "hi" {
				t.Fatalf("after: %d %q", r.Status, r.Body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not serve again once descriptors were free: %v", err)
		}
	}
	m := scrape(t, g, "")
	if m["edgeway_accept_fd_exhausted_total"] == 0 {
		t.Fatal("edgeway_accept_fd_exhausted_total not counted")
	}
}

// kill -9 leaves the runtime folder behind; the next start removes it,
// and never the folder of a gateway that is still running.
func TestStaleRuntimeFolderIsRemovedAtStartup(t *testing.T) {
	files := map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`}
	live := startGateway(t, files)
	killed := startGateway(t, files)
	if r := killed.Get("/hello"); r.Status != 200 {
		t.Fatalf("%d %q", r.Status, r.Body)
	}
	killed.cmd.Process.Kill()
	killed.WaitExit()
	waitNoProcesses(t, killed.RunDir) // workers die with their gateway
	if _, err := os.Stat(killed.RunDir); err != nil {
		t.Fatalf("kill -9 left no runtime folder to clean (%v): the test proves nothing", err)
	}
	next := startGateway(t, files)
	next.WaitLog(func(l logLine) bool {
		return l.Msg() == "removed the runtime folder of a gateway that is gone" && l.Str("dir") == killed.RunDir
	})
	if _, err := os.Stat(killed.RunDir); !os.IsNotExist(err) {
		t.Fatalf("stale runtime folder %s still there: %v", killed.RunDir, err)
	}
	if _, err := os.Stat(live.RunDir); err != nil {
		t.Fatalf("a live gateway's runtime folder was removed: %v", err)
	}
	if r := live.Get("/hello"); r.Status != 200 {
		t.Fatalf("the live gateway after another's start: %d %q", r.Status, r.Body)
	}
}
