package e2e

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

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
