package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
)

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
