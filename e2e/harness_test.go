// Package e2e starts the real edgeway binary with real Deno workers on
// temporary functions folders and talks real HTTP to it.
//
// Run through `make test-e2e`, which builds bin/edgeway and provides Deno
// (EDGEWAY_BIN, EDGEWAY_TEST_DENO). Every wait is for an event (a log line,
// a response, a process exit) with a generous deadline, never a fixed sleep.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// eventTimeout bounds every wait: generous, because the test runner, the
// gateway and Deno share two cores.
const eventTimeout = 60 * time.Second

func binPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("EDGEWAY_BIN")
	if p == "" {
		p = "../bin/edgeway"
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("edgeway binary not found at %s (run `make test-e2e`): %v", abs, err)
	}
	return abs
}

func denoPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("EDGEWAY_TEST_DENO"); p != "" {
		return p
	}
	if p, err := exec.LookPath("deno"); err == nil {
		return p
	}
	p, _ := filepath.Abs("../.tools/node_modules/.bin/deno")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("deno not found: set EDGEWAY_TEST_DENO or run `make deno`")
	}
	return p
}

// writeTree writes files (path relative to root → content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Gateway is a running edgeway process.
type Gateway struct {
	t       *testing.T
	cmd     *exec.Cmd
	URL     string
	RunDir  string
	Dir     string // the functions folder
	logs    *logSink
	exited  chan struct{}
	exitErr error
}

// startGateway writes files into a fresh functions folder and serves it.
// files keys are relative to the functions folder ("hello/index.ts"); a key
// starting with "../" lands next to it (e.g. "../config.toml").
func startGateway(t *testing.T, files map[string]string, args ...string) *Gateway {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "functions")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, files)
	g := launch(t, dir, args...)
	if err := g.waitListening(); err != nil {
		t.Fatalf("gateway did not start: %v\n%s", err, g.logs.text())
	}
	return g
}

// launch starts the binary without waiting for it to listen.
func launch(t *testing.T, dir string, args ...string) *Gateway {
	t.Helper()
	// Production mode needs a JWT key; tests that check auth pass their own
	// --auth/--jwt-* flags, which come later and win.
	full := append([]string{"serve", "--functions", dir, "--port", "0", "--deno", denoPath(t), "--log-format", "json", "--log-level", "debug", "--auth", "none", "--rate-limit", "0"}, args...)
	cmd := exec.Command(binPath(t), full...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	// Not StderrPipe: Wait closes that pipe as soon as the process exits,
	// and its last lines (the ones a test about exiting waits for) could be
	// lost. With a pipe of our own, exited is closed once the log is read
	// to its end (or eventTimeout after the exit, should a leaked child
	// hold the pipe open).
	stderr, stderrW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderrW
	cmd.Stdout = io.Discard
	g := &Gateway{t: t, cmd: cmd, Dir: dir, logs: newLogSink(), exited: make(chan struct{})}
	err = cmd.Start()
	stderrW.Close()
	if err != nil {
		stderr.Close()
		t.Fatal(err)
	}
	logRead := make(chan struct{})
	go func() {
		defer close(logRead)
		defer stderr.Close()
		g.logs.consume(stderr)
	}()
	go func() {
		g.exitErr = cmd.Wait()
		select {
		case <-logRead:
		case <-time.After(eventTimeout):
		}
		close(g.exited)
	}()
	g.stopOnCleanup()
	return g
}

// stopOnCleanup stops the gateway when the test ends (SIGTERM, then
// SIGKILL after eventTimeout) and prints its log if the test failed.
func (g *Gateway) stopOnCleanup() {
	g.t.Cleanup(func() {
		select {
		case <-g.exited:
		default:
			g.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-g.exited:
			case <-time.After(eventTimeout):
				g.cmd.Process.Kill()
				<-g.exited
			}
		}
		if g.t.Failed() {
			g.t.Logf("gateway log:\n%s", g.logs.text())
		}
	})
}

func (g *Gateway) waitListening() error {
	line, err := g.logs.wait(func(l logLine) bool { return l.Msg() == "edgeway listening" }, eventTimeout, g.exited)
	if err != nil {
		return err
	}
	g.URL = "http://" + line.Str("addr")
	g.RunDir = line.Str("run_dir")
	return nil
}

// WaitLog waits for a log line matching pred.
func (g *Gateway) WaitLog(pred func(logLine) bool) logLine {
	g.t.Helper()
	l, err := g.logs.wait(pred, eventTimeout, nil)
	if err != nil {
		g.t.Fatalf("waiting for log line: %v", err)
	}
	return l
}

// WaitLogCount waits until at least n lines match pred.
func (g *Gateway) WaitLogCount(pred func(logLine) bool, n int) {
	g.t.Helper()
	deadline := time.After(eventTimeout)
	for {
		g.logs.mu.Lock()
		changed := g.logs.changed
		g.logs.mu.Unlock()
		if g.logs.count(pred) >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			g.t.Fatalf("fewer than %d matching log lines within %s", n, eventTimeout)
		}
	}
}

// Signal sends sig to the gateway.
func (g *Gateway) Signal(sig os.Signal) { g.cmd.Process.Signal(sig) }

// WaitExit waits for the gateway to exit and returns its exit code.
func (g *Gateway) WaitExit() int {
	g.t.Helper()
	select {
	case <-g.exited:
	case <-time.After(eventTimeout):
		g.t.Fatalf("gateway did not exit")
	}
	if g.exitErr == nil {
		return 0
	}
	if ee, ok := g.exitErr.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// WorkerPIDs lists live Deno processes started by this gateway: those whose
// command line names its private runtime folder.
func (g *Gateway) WorkerPIDs() []int {
	return processesMentioning(g.RunDir)
}

func processesMentioning(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(s)) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && bytes.Contains(stat, []byte(") Z ")) {
			continue // zombie: already dead
		}
		pids = append(pids, pid)
	}
	return pids
}

// waitNoWorkers waits until no process mentions the runtime folder.
func waitNoProcesses(t *testing.T, runDir string) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		pids := processesMentioning(runDir)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Deno processes still alive: %v", pids)
		}
		time.Sleep(20 * time.Millisecond) // polling /proc: there is no event for another process's exit
	}
}

var client = &http.Client{Timeout: 2 * eventTimeout}

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r Response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not JSON: %v: %q", err, r.Body)
	}
	return m
}

// Do sends a request and reads the whole response.
func (g *Gateway) Do(method, path string, body io.Reader, header map[string]string) Response {
	g.t.Helper()
	resp, err := g.try(method, path, body, header)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func (g *Gateway) try(method, path string, body io.Reader, header map[string]string) (Response, error) {
	req, err := http.NewRequest(method, g.URL+path, body)
	if err != nil {
		return Response{}, err
	}
	for k, v := range header {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Get is Do("GET", path, nil, nil).
func (g *Gateway) Get(path string) Response {
	g.t.Helper()
	return g.Do("GET", path, nil, nil)
}

// expectError checks a gateway-made JSON error.
func expectError(t *testing.T, r Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %q", r.Status, status, r.Body)
	}
	if got := r.Header.Get("X-Edgeway-Error"); got != code {
		t.Fatalf("x-edgeway-error = %q, want %q", got, code)
	}
	if m := r.JSON(t); m["code"] != code {
		t.Fatalf("body code = %v, want %s", m["code"], code)
	}
}

// logLine is one JSON log record.
type logLine map[string]any

func (l logLine) Msg() string           { return l.Str("message") }
func (l logLine) Str(key string) string { s, _ := l[key].(string); return s }
func (l logLine) Int(key string) int    { f, _ := l[key].(float64); return int(f) }

// logSink collects the gateway's log lines and wakes waiters on each.
type logSink struct {
	mu      sync.Mutex
	lines   []logLine
	raw     []string
	changed chan struct{}
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (s *logSink) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		text := sc.Text()
		var l logLine
		_ = json.Unmarshal([]byte(text), &l)
		s.mu.Lock()
		s.raw = append(s.raw, text)
		if l != nil {
			s.lines = append(s.lines, l)
		}
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
}

func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.raw, "\n")
}

// Count returns how many lines match pred so far.
func (s *logSink) count(pred func(logLine) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if pred(l) {
			n++
		}
	}
	return n
}

// wait returns the first line (old or new) matching pred.
func (s *logSink) wait(pred func(logLine) bool, timeout time.Duration, abort <-chan struct{}) (logLine, error) {
	deadline := time.After(timeout)
	seen := 0
	for {
		s.mu.Lock()
		for ; seen < len(s.lines); seen++ {
			if pred(s.lines[seen]) {
				l := s.lines[seen]
				s.mu.Unlock()
				return l, nil
			}
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-abort:
			return nil, fmt.Errorf("process exited")
		case <-deadline:
			return nil, fmt.Errorf("no matching log line within %s", timeout)
		}
	}
}
