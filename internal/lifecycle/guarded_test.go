package lifecycle

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"edgeway.dev/edgeway/internal/upstream"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

func panicCount(where string) uint64 {
	return metrics.GetOrCreateCounter(`edgeway_panics_total{where="` + where + `"}`).Get()
}

// A panic while a worker is being started counts as a failed boot: before,
// the goroutine died with the process, and had it been recovered without
// a report the manager would have counted the worker as starting forever.
func TestPanicWhileStartingIsAFailedBoot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := testOptions()
		opts.BootRetryBackoff = time.Second
		h := newHarness(t, testConfig(), opts)
		var panicked atomic.Bool
		h.configure = func(*fakeProc) {
			if panicked.CompareAndSwap(false, true) {
				panic("bug while starting")
			}
		}
		before := panicCount("lifecycle")
		h.run()
		if r := <-h.acquireAsync(); !errors.Is(r.err, upstream.ErrBoot) {
			t.Fatalf("request waiting for the panicked start: %v, want ErrBoot", r.err)
		}
		h.expect(0, 0, 0)
		if got := panicCount("lifecycle"); got != before+1 {
			t.Fatalf("lifecycle panics %d → %d, want one more", before, got)
		}
		h.sleepUntil(time.Second) // the boot backoff
		h.release(h.acquire())
	})
}

// The thread that starts processes survives a panic in a start: the start
// fails, and the next one works (before, every later start waited forever).
func TestSpawnerSurvivesAPanic(t *testing.T) {
	s := newSpawner(zerolog.Nop())
	before := panicCount("spawner")
	reply := make(chan error, 1)
	s.reqs <- spawnRequest{cmd: nil, reply: reply} // Start on nil panics
	if err := <-reply; err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("a panicked start answered %v", err)
	}
	if got := panicCount("spawner"); got != before+1 {
		t.Fatalf("spawner panics %d → %d, want one more", before, got)
	}
	cmd := exec.Command("true")
	if err := s.start(cmd); err != nil {
		t.Fatalf("start after a panic: %v", err)
	}
	cmd.Wait()
}

// A panic while a worker's output is logged (here in masking) drops that
// line, is counted, and the pipe goes on being drained and logged.
func TestWorkerOutputSurvivesAPanic(t *testing.T) {
	var out bytes.Buffer
	lw := &lineWriter{log: zerolog.New(&out), level: zerolog.InfoLevel, maxLine: 1024,
		mask: func(s string) string {
			if s == "boom" {
				panic("mask bug")
			}
			return s
		}}
	before := panicCount("process")
	for _, line := range []string{"boom\n", "after\n"} {
		if n, err := lw.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", line, n, err)
		}
	}
	if !strings.Contains(out.String(), `"message":"after"`) {
		t.Fatalf("the line after the panic was not logged: %s", out.String())
	}
	if got := panicCount("process"); got != before+1 {
		t.Fatalf("process panics %d → %d, want one more", before, got)
	}
}
