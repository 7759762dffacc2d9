package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Helpers for the tests that the whole gateway survives its own bugs and
// its environment (issue 15, "the whole gateway must survive"):
// panic_test.go, pprof_test.go, stucklog_test.go, fds_test.go,
// rundir_test.go.

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

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
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
	g.stopOnCleanup()
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
