package e2e

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// zeroParamHandler reports how many arguments Deno passed it: a handler
// declared without parameters is called by Deno 2.9 without a Request for a
// plain request (its fast path, chosen by the handler's length).
const zeroParamHandler = `function () { return new Response(String(arguments.length)); }`

// TestParityZeroParameterHandler: behind the gateway a handler declared
// without parameters is called exactly as `deno run` calls it (the
// bootstrap's wrapper keeps Deno's zero-parameter fast path), while a handler
// with parameters still gets the request with its http:// URL and ConnInfo.
func TestParityZeroParameterHandler(t *testing.T) {
	g := startGateway(t, map[string]string{
		"zero/index.ts": `Deno.serve(` + zeroParamHandler + `);`,
		"two/index.ts": `Deno.serve(function (req, info) {
  return Response.json({ args: arguments.length, url: req.url, ip: info.remoteAddr.hostname });
});`,
	})
	direct := startDirectDeno(t, `Deno.serve({ hostname: "127.0.0.1", port: 0, onListen({ port }) { console.log(port); } }, `+zeroParamHandler+`);`)

	for _, method := range []string{"GET", "POST"} {
		var body func() io.Reader = func() io.Reader { return nil }
		if method == "POST" {
			body = func() io.Reader { return strings.NewReader("payload") }
		}
		want := directDo(t, method, direct+"/zero", body())
		got := g.Do(method, "/zero", body(), nil)
		if got.Status != 200 || string(got.Body) != want {
			t.Errorf("%s /zero: behind the gateway %d %q, deno run %q", method, got.Status, got.Body, want)
		}
	}

	m := g.Do("GET", "/two/x", nil, nil).JSON(t)
	if m["args"] != float64(2) || !strings.HasPrefix(m["url"].(string), "http://") || m["ip"] != "127.0.0.1" {
		t.Errorf("handler with parameters: %v, want 2 arguments, an http:// URL and ConnInfo's client address", m)
	}
}

// startDirectDeno runs code with `deno run` (no gateway, no bootstrap) and
// returns its base URL once it printed the port it listens on.
func startDirectDeno(t *testing.T, code string) string {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "direct.ts")
	if err := os.WriteFile(script, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(denoPath(t), "run", "--no-prompt", "--allow-net=127.0.0.1", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		port <- strings.TrimSpace(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case p := <-port:
		if p == "" {
			t.Fatal("deno run exited before listening")
		}
		return "http://127.0.0.1:" + p
	case <-time.After(eventTimeout):
		t.Fatal("deno run did not listen")
	}
	return ""
}

func directDo(t *testing.T, method, url string, body io.Reader) string {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("deno run: %s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
