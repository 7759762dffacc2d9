package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// holdFn answers /hold only once the file "release" exists in its folder,
// logging "hold started <pid>" first, so tests control how long requests
// stay in flight without sleeping.
const holdFn = `
Deno.serve(async (req) => {
  const path = new URL(req.url).pathname;
  if (path === "/hold") {
    console.log("hold started " + Deno.pid);
    for (;;) {
      try { await Deno.stat(new URL("./release", import.meta.url)); break; } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  return Response.json({ pid: Deno.pid });
});
`

func pidOf(t *testing.T, r Response) int {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d: %q", r.Status, r.Body)
	}
	return int(r.JSON(t)["pid"].(float64))
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !containsZombie(stat)
}

func containsZombie(stat []byte) bool {
	for i := len(stat) - 1; i > 1; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] == 'Z'
		}
	}
	return false
}

func release(t *testing.T, g *Gateway, fn string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(g.Dir, fn, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScaleOutServesConcurrentSlowRequestsOnTwoWorkers(t *testing.T) {
	g := startGateway(t, map[string]string{
		"hold/index.ts":      holdFn,
		"hold/function.json": `{"maxWorkers": 2}`,
	})
	results := make(chan Response, 2)
	go func() { results <- g.Get("/hold/hold") }()
	first := g.WaitLog(func(l logLine) bool { return len(l.Msg()) > 13 && l.Msg()[:13] == "hold started " })
	go func() { results <- g.Get("/hold/hold") }()
	second := g.WaitLog(func(l logLine) bool {
		return len(l.Msg()) > 13 && l.Msg()[:13] == "hold started " && l.Msg() != first.Msg()
	})
	release(t, g, "hold")
	a, b := pidOf(t, <-results), pidOf(t, <-results)
	if a == b {
		t.Fatalf("both slow requests ran on pid %d (%s, %s)", a, first.Msg(), second.Msg())
	}
}

func TestIdleWorkerStopsAndNextRequestGetsANewOne(t *testing.T) {
	g := startGateway(t, map[string]string{
		"napper/index.ts":      `Deno.serve(() => Response.json({ pid: Deno.pid }));`,
		"napper/function.json": `{"idleTimeout": 300}`,
	})
	pid := pidOf(t, g.Get("/napper"))
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "worker stopped" && l.Str("reason") == "idle" && l.Int("pid") == pid
	})
	waitGone(t, pid)
	if next := pidOf(t, g.Get("/napper")); next == pid {
		t.Fatalf("cold function answered from the old pid %d", pid)
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; alive(pid); i++ {
		if i > int(eventTimeout.Milliseconds()/20) {
			t.Fatalf("pid %d still alive", pid)
		}
		sleepPoll()
	}
}

func TestRecyclesAtMaxDurationLoseNoRequest(t *testing.T) {
	g := startGateway(t, map[string]string{
		"cycle/index.ts":      `Deno.serve(() => Response.json({ pid: Deno.pid }));`,
		"cycle/function.json": `{"workerMaxDuration": 700}`,
	})
	recycles := func() int {
		return g.logs.count(func(l logLine) bool { return l.Msg() == "worker stopped" && l.Str("reason") == "max duration" })
	}
	var mu sync.Mutex
	pids := map[int]bool{}
	var failures []string
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for recycles() < 3 {
				r, err := g.try("GET", "/cycle", nil, nil)
				mu.Lock()
				if err != nil || r.Status != 200 {
					failures = append(failures, fmt.Sprintf("%v %d %q", err, r.Status, r.Body))
				} else {
					pids[int(r.JSON(t)["pid"].(float64))] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d requests failed across recycles, first: %s", len(failures), failures[0])
	}
	if len(pids) < 3 {
		t.Fatalf("served by %d workers across 3 recycles", len(pids))
	}
}

func TestBlockedEventLoopIsReplaced(t *testing.T) {
	g := startGateway(t, map[string]string{
		"blocker/index.ts": `Deno.serve((req) => {
  if (new URL(req.url).pathname === "/block") { console.log("blocking"); for (;;) {} }
  return Response.json({ pid: Deno.pid });
});`,
		"blocker/function.json": `{"healthCheckInterval": 200, "healthCheckTimeout": 300, "healthCheckMaxFailures": 2}`,
	}, "--timeout", "5m")
	pid := pidOf(t, g.Get("/blocker"))
	blocked := make(chan Response, 1)
	go func() { blocked <- g.Get("/blocker/block") }()
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "stopping worker" && l.Str("reason") == "health" && l.Int("pid") == pid
	})
	expectError(t, <-blocked, 502, "WORKER_ERROR")
	if next := pidOf(t, g.Get("/blocker")); next == pid {
		t.Fatal("the blocked worker still answers")
	}
}

func TestMemoryLimitAnswers546ThenRecovers(t *testing.T) {
	g := startGateway(t, map[string]string{
		"hog/index.ts": `const keep: unknown[] = [];
Deno.serve((req) => {
  if (new URL(req.url).pathname === "/alloc") { for (;;) keep.push(new Array(100000).fill({ x: Math.random() })); }
  return Response.json({ pid: Deno.pid });
});`,
		"hog/function.json": `{"memoryLimitMb": 40}`,
	})
	pid := pidOf(t, g.Get("/hog"))
	expectError(t, g.Get("/hog/alloc"), 546, "WORKER_LIMIT")
	if next := pidOf(t, g.Get("/hog")); next == pid {
		t.Fatal("expected a fresh worker after the memory kill")
	}
	g.WaitLog(func(l logLine) bool { return l.Msg() == "worker died" && l.Str("reason") == "memory" })
}

func TestWaitUntilFinishesAfterTheResponseDespiteIdleTimeout(t *testing.T) {
	hits := make(chan string, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- r.URL.Query().Get("from")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g := startGateway(t, map[string]string{
		"bg/index.ts": `Deno.serve((req) => {
  const target = new URL(req.url).searchParams.get("notify")!;
  EdgeRuntime.waitUntil((async () => {
    await new Promise((r) => setTimeout(r, 1500));
    await fetch(target + "?from=" + Deno.pid);
  })());
  return Response.json({ pid: Deno.pid });
});`,
		"bg/function.json": `{"idleTimeout": 100}`,
	})
	r := g.Get("/bg?notify=" + "http://" + ln.Addr().String() + "/done")
	pid := pidOf(t, r)
	select {
	case from := <-hits:
		if from != strconv.Itoa(pid) {
			t.Fatalf("background task reported from %s, want %d", from, pid)
		}
	case <-timeAfter(eventTimeout):
		t.Fatal("the background task never finished: the worker was stopped under it")
	}
	// With the task done, the idle timeout applies again.
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "worker stopped" && l.Str("reason") == "idle" && l.Int("pid") == pid
	})
}

func TestMaxConcurrencyQueueOverflowsWith503(t *testing.T) {
	g := startGateway(t, map[string]string{
		"narrow/index.ts":      holdFn,
		"narrow/function.json": `{"eagerSpawn": true, "maxConcurrency": 1, "maxQueue": 1, "queueTimeoutMs": 60000}`,
	})
	g.WaitLog(func(l logLine) bool { return l.Msg() == "worker ready" && l.Str("function") == "narrow" })
	results := make(chan Response, 5)
	go func() { results <- g.Get("/narrow/hold") }()
	g.WaitLog(func(l logLine) bool { return len(l.Msg()) > 13 && l.Msg()[:13] == "hold started " })
	for i := 0; i < 4; i++ {
		go func() { results <- g.Get("/narrow/hold") }()
	}
	// One runs, one waits in the queue, three are refused at once.
	for i := 0; i < 3; i++ {
		r := <-results
		expectError(t, r, 503, "OVERLOADED")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("OVERLOADED without Retry-After")
		}
	}
	release(t, g, "narrow")
	for i := 0; i < 2; i++ {
		pidOf(t, <-results)
	}
}

func TestEagerSpawnStartsWorkersBeforeAnyRequest(t *testing.T) {
	g := startGateway(t, map[string]string{
		"eager/index.ts":      `Deno.serve(() => new Response("ok"));`,
		"eager/function.json": `{"eagerSpawn": true, "minWorkers": 2, "maxWorkers": 3}`,
		"lazy/index.ts":       `Deno.serve(() => new Response("ok"));`,
	})
	for i := 0; i < 2; i++ {
		n := i
		g.WaitLog(func(l logLine) bool {
			return l.Msg() == "worker ready" && l.Str("function") == "eager" && l.Int("running") == n+1
		})
	}
	if n := len(g.WorkerPIDs()); n != 2 {
		t.Fatalf("%d workers before any request, want 2 (lazy must not start)", n)
	}
}

func TestMinWorkersComesBackAfterKill9(t *testing.T) {
	g := startGateway(t, map[string]string{
		"steady/index.ts":      `Deno.serve(() => Response.json({ pid: Deno.pid }));`,
		"steady/function.json": `{"minWorkers": 1}`,
	})
	first := g.WaitLog(func(l logLine) bool { return l.Msg() == "worker ready" && l.Str("function") == "steady" })
	pid := first.Int("pid")
	syscall.Kill(pid, syscall.SIGKILL)
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "worker ready" && l.Str("function") == "steady" && l.Int("pid") != pid
	})
	if got := pidOf(t, g.Get("/steady")); got == pid {
		t.Fatal("answered by the killed worker")
	}
}
