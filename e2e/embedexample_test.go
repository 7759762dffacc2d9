package e2e

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goTool is the go command of the toolchain running the tests.
func goTool(t *testing.T) string {
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	return p
}

// lineWaiter reads a process's output lines and waits for one matching.
type lineWaiter struct {
	lines chan string
	seen  []string
}

func newLineWaiter(r io.Reader) *lineWaiter {
	w := &lineWaiter{lines: make(chan string, 256)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
	}()
	return w
}

func (w *lineWaiter) wait(t *testing.T, pred func(string) bool) string {
	t.Helper()
	deadline := time.After(eventTimeout)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				t.Fatalf("output ended without the line; saw:\n%s", strings.Join(w.seen, "\n"))
			}
			w.seen = append(w.seen, l)
			if pred(l) {
				return l
			}
		case <-deadline:
			t.Fatalf("line not seen within %v; saw:\n%s", eventTimeout, strings.Join(w.seen, "\n"))
		}
	}
}

// examples/embed/gateway, a separate module built against this
// repository, mounts the gateway in a net/http server with a custom
// authenticator and a request-stats hook (issue #17).
func TestEmbedGatewayExample(t *testing.T) {
	dir, _ := filepath.Abs("../examples/embed")
	bin := filepath.Join(t.TempDir(), "gateway")
	build := exec.Command(goTool(t), "build", "-o", bin, "./gateway")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in examples/embed: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-deno", denoPath(t))
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	out := newLineWaiter(stdout)
	base := "http://" + strings.TrimPrefix(out.wait(t, func(l string) bool { return strings.HasPrefix(l, "listening on http://") }), "listening on http://")

	client := &http.Client{Timeout: eventTimeout}
	get := func(path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get("/", ""); st != 200 || !strings.Contains(body, "the host's own page") {
		t.Fatalf("host page: %d %q", st, body)
	}
	const hello = `{"message":"Hello, demo!","role":"reader"}`
	if st, body := get("/api/hello", "demo-token"); st != 200 || body != hello {
		t.Fatalf("hello with the token: %d %q", st, body)
	}
	if st, _ := get("/api/hello", "wrong"); st != 401 {
		t.Fatalf("hello with a wrong token: %d", st)
	}
	out.wait(t, func(l string) bool { return l == "function hello is warm" })
	out.wait(t, func(l string) bool {
		return strings.HasPrefix(l, "stats function=hello status=200 ") && strings.HasSuffix(l, " response_bytes="+strconv.Itoa(len(hello)))
	})
	out.wait(t, func(l string) bool {
		return strings.HasPrefix(l, "stats function=hello status=401 ") && !strings.HasSuffix(l, " response_bytes=0")
	})
	cmd.Process.Signal(syscall.SIGTERM)
	out.wait(t, func(l string) bool { return l == "stopped" })
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	exited = true
}
