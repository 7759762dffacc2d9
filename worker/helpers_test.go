package worker

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventTimeout bounds every wait for something a worker does: generous, as
// the test machine may be slow and busy.
const eventTimeout = 60 * time.Second

// testDeno is the Deno the tests run: EDGEWAY_TEST_DENO, else deno on
// PATH; the test is skipped when there is none.
func testDeno(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("EDGEWAY_TEST_DENO"); d != "" {
		return d
	}
	d, err := exec.LookPath("deno")
	if err != nil {
		t.Skip("no Deno: set EDGEWAY_TEST_DENO or put deno on PATH")
	}
	return d
}

// logs gathers a worker's output lines.
type logs struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

func newLogs() *logs { return &logs{added: make(chan struct{}, 1)} }

func (l *logs) add(stream, line string) {
	l.mu.Lock()
	l.lines = append(l.lines, stream+": "+line)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
}

// wait waits for a line containing s.
func (l *logs) wait(t *testing.T, s string) {
	t.Helper()
	deadline := time.NewTimer(eventTimeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if strings.Contains(line, s) {
				l.mu.Unlock()
				return
			}
		}
		all := strings.Join(l.lines, "\n")
		l.mu.Unlock()
		select {
		case <-l.added:
		case <-deadline.C:
			t.Fatalf("no log line with %q; got:\n%s", s, all)
		}
	}
}

// start starts a worker with Deno set and stops it when the test ends.
func start(t *testing.T, o Options) *Worker {
	t.Helper()
	o.Deno = testDeno(t)
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	w, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Terminate)
	return w
}

// waitFor polls cond (cheap state, no I/O) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitExited waits for the worker's process to be gone.
func waitExited(t *testing.T, w *Worker) {
	t.Helper()
	select {
	case <-w.Exited():
	case <-time.After(eventTimeout):
		t.Fatal("the worker did not exit")
	}
}
