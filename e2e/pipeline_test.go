package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// kinds answers every response shape that stresses framing on a shared
// connection: bodies with Content-Length, HEAD, 204, 304, chunked streams
// and bodies larger than one buffer.
const kindsFn = `
const big = "x".repeat(300000);
Deno.serve(async (req) => {
  const u = new URL(req.url);
  switch (u.pathname) {
    case "/len": return new Response("hello " + u.search, { headers: { "x-kind": "len" } });
    case "/nocontent": return new Response(null, { status: 204 });
    case "/notmodified": return new Response(null, { status: 304, headers: { etag: '"v1"' } });
    case "/chunked": {
      const enc = new TextEncoder();
      let i = 0;
      return new Response(new ReadableStream({ pull(c) { if (i === 5) return c.close(); c.enqueue(enc.encode("chunk" + i++ + ";")); } }));
    }
    case "/big": return new Response(big);
    default: return new Response("?", { status: 400 });
  }
});`

func TestPipelinedConnectionsKeepFramingCorrect(t *testing.T) {
	g := startGateway(t, map[string]string{"kinds/index.ts": kindsFn}, "--upstream-pipeline-conns", "1")
	type check struct {
		method, path string
		status       int
		body         string
	}
	checks := []check{
		{"GET", "/kinds/len?a=1", 200, "hello ?a=1"},
		{"HEAD", "/kinds/len?h", 200, ""},
		{"GET", "/kinds/nocontent", 204, ""},
		{"GET", "/kinds/notmodified", 304, ""},
		{"GET", "/kinds/chunked", 200, "chunk0;chunk1;chunk2;chunk3;chunk4;"},
		{"GET", "/kinds/big", 200, strings.Repeat("x", 300000)},
	}
	g.Get("/kinds/len") // boot the worker
	var wg sync.WaitGroup
	errs := make(chan string, 1000)
	for c := 0; c < 24; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				k := checks[(c+i)%len(checks)]
				r, err := g.try(k.method, k.path, nil, nil)
				if err != nil {
					errs <- fmt.Sprintf("%s %s: %v", k.method, k.path, err)
					continue
				}
				if r.Status != k.status || string(r.Body) != k.body {
					errs <- fmt.Sprintf("%s %s: %d %.60q", k.method, k.path, r.Status, r.Body)
				}
				if k.method == "HEAD" && r.Header.Get("Content-Length") != "8" {
					errs <- fmt.Sprintf("HEAD lost its Content-Length: %q", r.Header.Get("Content-Length"))
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	n := 0
	for e := range errs {
		if n++; n <= 10 {
			t.Error(e)
		}
	}
	g.Signal(syscall.SIGTERM)
	stats := g.WaitLog(func(l logLine) bool { return l.Msg() == "function stopped" && l.Str("function") == "kinds" })
	if stats.Int("pipelined") == 0 {
		t.Fatalf("no request was pipelined (%v): the test proved nothing", stats)
	}
	t.Logf("pipelined %d, exclusive %d", stats.Int("pipelined"), stats.Int("exclusive"))
}

func TestSlowRequestDoesNotBlockFastOnesBehindIt(t *testing.T) {
	g := startGateway(t, map[string]string{"mixed/index.ts": holdFn})
	g.Get("/mixed") // boot, and a fast history for the function
	slow := make(chan Response, 1)
	go func() { slow <- g.Get("/mixed/hold") }()
	g.WaitLog(func(l logLine) bool { return strings.HasPrefix(l.Msg(), "hold started") })
	for i := 0; i < 20; i++ {
		if r := g.Get(fmt.Sprintf("/mixed/fast%d", i)); r.Status != 200 {
			t.Fatalf("fast request %d: %d", i, r.Status)
		}
	}
	select {
	case r := <-slow:
		t.Fatalf("the slow request finished before it was released: %d", r.Status)
	default:
	}
	release(t, g, "mixed")
	if r := <-slow; r.Status != 200 {
		t.Fatalf("slow request: %d", r.Status)
	}
}

func TestKilledWorkerFailsSentRequestsAndServesQueuedOnesElsewhere(t *testing.T) {
	g := startGateway(t, map[string]string{
		"victim/index.ts":      holdFn,
		"victim/function.json": `{"eagerSpawn": true, "maxConcurrency": 2, "maxQueue": 10}`,
	})
	ready := g.WaitLog(func(l logLine) bool { return l.Msg() == "worker ready" && l.Str("function") == "victim" })
	pid := ready.Int("pid")
	held := make(chan Response, 2)
	for i := 0; i < 2; i++ {
		go func() { held <- g.Get("/victim/hold") }()
	}
	g.WaitLogCount(func(l logLine) bool { return strings.HasPrefix(l.Msg(), "hold started") }, 2)
	queued := make(chan Response, 3)
	for i := 0; i < 3; i++ {
		go func() { queued <- g.Get("/victim/after") }()
	}
	// The three wait in the gateway (maxConcurrency reached), not yet sent.
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 2; i++ {
		expectError(t, <-held, 502, "WORKER_ERROR")
	}
	for i := 0; i < 3; i++ {
		if got := pidOf(t, <-queued); got == pid {
			t.Fatalf("queued request answered by the killed worker")
		}
	}
}

var _ = bufio.NewReader
var _ = http.MethodHead
