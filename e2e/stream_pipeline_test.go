package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// streamFn answers /sse, after a pause, with an endless event stream
// (without being asked for one), and anything else at once.
const streamFn = `
Deno.serve(async (req) => {
  const u = new URL(req.url);
  if (u.pathname.endsWith("/sse")) {
    console.log("sse start");
    await new Promise((r) => setTimeout(r, 1500));
    const enc = new TextEncoder();
    let timer;
    return new Response(new ReadableStream({
      start(c) {
        c.enqueue(enc.encode("data: first\n\n"));
        timer = setInterval(() => { try { c.enqueue(enc.encode("data: tick\n\n")); } catch { clearInterval(timer); } }, 200);
      },
      cancel() { clearInterval(timer); },
    }), { headers: { "content-type": "text/event-stream" } });
  }
  return new Response("quick");
});`

// Quick requests sent while an event stream is being opened on the same
// worker are pipelined behind it (one pipelined connection, a max age longer
// than the stream's pause); they must be answered while the stream runs,
// and nothing fails when the stream's client leaves.
func TestQuickRequestsAnswerWhileAStreamRuns(t *testing.T) {
	g := startGateway(t, map[string]string{"stream/index.ts": streamFn},
		"--upstream-pipeline-conns", "1", "--upstream-pipeline-max-age", "5s", "--upstream-pipeline-slow", "5s")
	for i := 0; i < 5; i++ {
		if r := g.Get("/stream/quick"); r.Status != 200 {
			t.Fatalf("warm-up: %d %q", r.Status, r.Body)
		}
	}
	addr := strings.TrimPrefix(g.URL, "http://")
	sse, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Close()
	fmt.Fprintf(sse, "GET /stream/sse HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	g.WaitLog(func(l logLine) bool { return l.Msg() == "sse start" })

	// Sent while the stream's head is still coming: queued behind it.
	quick := func(n int) []string {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var bad []string
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := g.try("GET", "/stream/quick", nil, nil)
				if err != nil || r.Status != 200 || string(r.Body) != "quick" {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%v %d %q", err, r.Status, r.Body))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return bad
	}
	if bad := quick(4); len(bad) > 0 {
		t.Fatalf("quick requests behind the stream: %v", bad)
	}
	sse.SetReadDeadline(time.Now().Add(eventTimeout))
	br := bufio.NewReader(sse)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if strings.HasPrefix(line, "data: first") {
			break
		}
	}
	// The stream still runs: the quick requests did not wait for its end.
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("stream ended: %v", err)
	}
	sse.Close() // the stream's client leaves
	if bad := quick(8); len(bad) > 0 {
		t.Fatalf("quick requests after the stream's client left: %v", bad)
	}
	if r := g.Get("/stream/quick"); r.Status != 200 {
		t.Fatalf("after: %d %q", r.Status, r.Body)
	}
}
