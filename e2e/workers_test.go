package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Item 3 of issue 15: a function that patches Conn.prototype.write and
// read (reachable from any connection it opens) must not get hold of the
// bootstrap's private control connection, so it can neither forge control
// lines nor flood the gateway through it.
func TestWorkersControlConnectionCannotBeTaken(t *testing.T) {
	g := startGateway(t, map[string]string{"thief/index.ts": `
let captured = 0;
let patched = false;
Deno.serve(async (req) => {
  const url = new URL(req.url);
  if (!patched) {
    patched = true;
    const own = await Deno.connect({ hostname: "127.0.0.1", port: Number(url.port) });
    const proto = Object.getPrototypeOf(Object.getPrototypeOf(own));
    own.close();
    const write = proto.write, read = proto.read;
    proto.write = function (b) {
      captured++;
      // Forge readiness and task counts, then 32 MiB without a newline.
      write.call(this, new TextEncoder().encode("ready\nbg 0\npong 1 0\n"));
      write.call(this, new Uint8Array(32 << 20).fill(65));
      return write.call(this, b);
    };
    proto.read = function (b) { captured++; return read.call(this, b); };
  }
  EdgeRuntime.waitUntil(new Promise((r) => setTimeout(r, 5)));
  return Response.json({ captured, pid: Deno.pid });
});
`}, "--health-check-interval", "100ms")
	first := g.Get("/thief").JSON(t)
	// Background tasks and health pings make the bootstrap write and read
	// its control connection many times from here on.
	for i := 0; i < 20; i++ {
		r := g.Get("/thief")
		if r.Status != 200 {
			t.Fatalf("request %d: %d %q", i, r.Status, r.Body)
		}
		body := r.JSON(t)
		if body["captured"].(float64) != 0 {
			t.Fatalf("the function's patched Conn.prototype saw %v calls from the bootstrap", body["captured"])
		}
		if body["pid"] != first["pid"] {
			t.Fatalf("the worker was replaced (pid %v, then %v)", first["pid"], body["pid"])
		}
	}
	if strings.Contains(g.logs.text(), "control protocol") {
		t.Fatal("a control protocol violation was logged")
	}
}

// Item 13 of issue 15: requests to a function with a syntax error must not
// start a Deno process each (40 requests started 20 before the fix). Four
// clients send ten requests each, one after the other: before the fix
// every answered request let the next one start a boot. Now one boot runs
// per --boot-retry-backoff and failed boots open the crash loop after
// --crash-loop-threshold+1 of them.
func TestWorkersBrokenFunctionDoesNotSpawnPerRequest(t *testing.T) {
	g := startGateway(t, map[string]string{
		"broken/index.ts": `Deno.serve(() => new Response("x")`, // syntax error
	}, "--internal-key", internalKey, "--max-workers", "4", "--breaker-window", "1000",
		"--boot-retry-backoff", "2s", "--crash-loop-threshold", "2", "--crash-loop-cooldown", "10m")
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				r := g.Get("/broken")
				mu.Lock()
				codes[r.Header.Get("X-Edgeway-Error")+" "+strconv.Itoa(r.Status)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for code := range codes {
		if code != "BOOT_ERROR 503" && code != "CRASH_LOOP 503" {
			t.Fatalf("answers %v, want only 503 BOOT_ERROR and CRASH_LOOP", codes)
		}
	}
	spawns := scrape(t, g, "")[`edgeway_worker_spawns_total{function="broken"}`]
	if spawns < 1 || spawns > 3 {
		t.Fatalf("40 requests to a function that cannot boot started %v workers, want 1 to 3 (answers %v)", spawns, codes)
	}
	g.WaitLogCount(func(l logLine) bool { return l.Msg() == "starting worker" && l.Str("function") == "broken" }, int(spawns))
}

// Item 9 of issue 15: a CPU-spinning handler made its function answer 504
// forever (the worker spun and was never replaced). After the timeout the
// worker's event loop is pinged; it does not answer, so it is replaced and
// later requests succeed. A worker merely awaiting a timer answers and
// keeps serving.
func TestWorkersSpinningWorkerIsReplaced(t *testing.T) {
	g := startGateway(t, map[string]string{"spinner/index.ts": `
Deno.serve(async (req) => {
  const q = new URL(req.url).searchParams;
  if (q.has("spin")) for (;;) {}
  if (q.has("sleep")) await new Promise((r) => setTimeout(r, 5000));
  return Response.json({ pid: Deno.pid });
});
`}, "--timeout", "1s", "--event-loop-timeout", "1s")
	first := g.Get("/spinner").JSON(t)["pid"]

	// Slow on async work: times out, answers the ping, keeps serving.
	expectError(t, g.Get("/spinner?sleep=1"), 504, "TIMEOUT")
	g.WaitLog(func(l logLine) bool { return strings.Contains(l.Msg(), "event loop answered") })
	if pid := g.Get("/spinner").JSON(t)["pid"]; pid != first {
		t.Fatalf("a worker slow on async work was replaced (pid %v, then %v)", first, pid)
	}

	// Spinning: times out, does not answer, replaced.
	expectError(t, g.Get("/spinner?spin=1"), 504, "TIMEOUT")
	g.WaitLog(func(l logLine) bool { return strings.Contains(l.Msg(), "event loop did not answer") })
	r := g.Get("/spinner")
	if r.Status != 200 {
		t.Fatalf("after the spinning worker was found wedged: %d %q", r.Status, r.Body)
	}
	if pid := r.JSON(t)["pid"]; pid == first {
		t.Fatalf("still served by the spinning worker %v", pid)
	}
	g.WaitLog(func(l logLine) bool { return l.Msg() == "worker stopped" && l.Str("reason") == "wedged" })
}

// Item 11 of issue 15: memory outside the V8 heap was unbounded (1.5 GB of
// ArrayBuffers with memoryLimitMb 128), and "died of its memory limit" was
// read from the worker's stderr, so a function printing V8's message got
// 546. Now the watchdog bounds the whole process, V8's own heap-limit death
// is read from the exit signal, and printed text means nothing.
func TestWorkersMemoryLimit(t *testing.T) {
	g := startGateway(t, map[string]string{
		"hog/function.json": `{"memoryLimitMb": 64}`,
		"hog/index.ts": `
const held = [];
Deno.serve(async (req) => {
  const q = new URL(req.url).searchParams;
  if (q.has("buffers")) {
    for (let i = 0; i < 256; i++) { // up to 4 GiB, 16 MiB at a time
      held.push(new Uint8Array(16 << 20).fill(1));
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  if (q.has("heap")) {
    for (;;) held.push(new Array(100000).fill({ x: 1 }));
  }
  return Response.json({ pid: Deno.pid });
});
`,
		"liar/index.ts": `
Deno.serve(() => {
  console.error("<--- Last few GCs --->");
  console.error("Fatal JavaScript out of memory: Reached heap limit");
  Deno.exit(1);
});
`,
	}, "--resource-check-interval", "50ms")
	first := g.Get("/hog").JSON(t)["pid"]
	expectError(t, g.Get("/hog?buffers=1"), 546, "WORKER_LIMIT")
	g.WaitLog(func(l logLine) bool {
		return l.Str("function") == "hog" && l.Msg() == "worker died" && l.Str("reason") == "memory"
	})
	second := g.Get("/hog").JSON(t)["pid"]
	if second == first {
		t.Fatal("the hog was not replaced")
	}
	// V8's own heap limit (SIGTRAP) is a memory limit too.
	expectError(t, g.Get("/hog?heap=1"), 546, "WORKER_LIMIT")
	if pid := g.Get("/hog").JSON(t)["pid"]; pid == second {
		t.Fatal("the worker that hit its heap limit was not replaced")
	}
	// Printing V8's message and exiting is a crash, not a memory limit.
	expectError(t, g.Get("/liar"), 502, "WORKER_ERROR")
	g.WaitLog(func(l logLine) bool {
		return l.Str("function") == "liar" && l.Msg() == "worker died" && l.Str("reason") == "crash"
	})
}

// Item 10 of issue 15: per-worker CPU time limits. At the soft limit the
// worker is retired (its request finishes, user code gets beforeunload
// with reason "cpu" and then drain, new requests go to a fresh worker); at
// the hard limit it is killed and its request gets 546 WORKER_LIMIT.
func TestWorkersCPUTimeLimits(t *testing.T) {
	// The handler burns CPU time, not wall-clock time: on a busy machine a
	// wall-clock burn may get less CPU than the limit and never reach it.
	const burner = `
import process from "node:process";
addEventListener("beforeunload", (e) => console.log("event beforeunload " + e.detail.reason));
addEventListener("drain", () => console.log("event drain"));
Deno.serve((req) => {
  const burnMs = Number(new URL(req.url).searchParams.get("burn") ?? 0);
  const start = process.cpuUsage();
  for (;;) {
    const used = process.cpuUsage(start);
    if ((used.user + used.system) / 1000 >= burnMs) break;
  }
  return Response.json({ pid: Deno.pid });
});
`
	g := startGateway(t, map[string]string{
		"soft/function.json": `{"cpuTimeSoftLimitMs": 300, "cpuTimeHardLimitMs": 60000}`,
		"soft/index.ts":      burner,
		"hard/function.json": `{"cpuTimeHardLimitMs": 300}`,
		"hard/index.ts":      burner,
	}, "--resource-check-interval", "50ms")
	first := g.Get("/soft").JSON(t)["pid"]
	r := g.Get("/soft?burn=600")
	if r.Status != 200 || r.JSON(t)["pid"] != first {
		t.Fatalf("request that crossed the soft limit: %d %q, want it finished by its worker", r.Status, r.Body)
	}
	g.WaitLog(func(l logLine) bool { return l.Str("function") == "soft" && l.Msg() == "event beforeunload cpu" })
	g.WaitLog(func(l logLine) bool { return l.Str("function") == "soft" && l.Msg() == "event drain" })
	g.WaitLog(func(l logLine) bool {
		return l.Str("function") == "soft" && l.Msg() == "worker stopped" && l.Str("reason") == "cpu"
	})
	if pid := g.Get("/soft").JSON(t)["pid"]; pid == first {
		t.Fatal("the retired worker still serves")
	}

	expectError(t, g.Get("/hard?burn=20000"), 546, "WORKER_LIMIT")
	g.WaitLog(func(l logLine) bool {
		return l.Str("function") == "hard" && l.Msg() == "worker died" && l.Str("reason") == "cpu"
	})
	if r := g.Get("/hard"); r.Status != 200 {
		t.Fatalf("after the hard limit: %d %q", r.Status, r.Body)
	}
}

// Item 14 of issue 15: 100 functions cold-started at once made 100 Deno
// processes. With --max-workers-total the gateway keeps at most that many:
// a function that needs a worker stops the least recently used idle one.
func TestWorkersTotalBudget(t *testing.T) {
	files := map[string]string{}
	for i := 0; i < 6; i++ {
		files[fmt.Sprintf("f%d/index.ts", i)] = `Deno.serve(() => Response.json({ pid: Deno.pid }));`
	}
	g := startGateway(t, files, "--max-workers-total", "3", "--internal-key", internalKey)
	for round := 0; round < 2; round++ {
		for i := 0; i < 6; i++ {
			if r := g.Get(fmt.Sprintf("/f%d", i)); r.Status != 200 {
				t.Fatalf("round %d, f%d: %d %q", round, i, r.Status, r.Body)
			}
			if n := len(g.WorkerPIDs()); n > 4 { // 3, plus one stopping that has not exited yet
				t.Fatalf("round %d, f%d: %d Deno processes alive, want at most 3 (+1 exiting)", round, i, n)
			}
		}
	}
	m := scrape(t, g, "")
	if used, ok := m["edgeway_workers_total_used"]; !ok || used > 3 || m["edgeway_workers_total_limit"] != 3 {
		t.Fatalf("edgeway_workers_total_used %v (exported %v), limit %v; want at most 3 of 3", used, ok, m["edgeway_workers_total_limit"])
	}
	if ev := m["edgeway_worker_budget_evictions_total"]; ev < 9 {
		t.Fatalf("%v evictions for 12 cold starts under a budget of 3, want at least 9", ev)
	}
	g.WaitLog(func(l logLine) bool { return l.Msg() == "worker stopped" && l.Str("reason") == "budget" })
}
