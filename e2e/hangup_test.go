package e2e

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// abortFn waits for its request's signal to abort and says so.
const abortFn = `
Deno.serve(async (req) => {
  if (new URL(req.url).pathname.endsWith("/wait")) {
    console.log("waiting");
    await new Promise((resolve) => req.signal.addEventListener("abort", resolve));
    console.log("aborted");
    return new Response("too late");
  }
  return new Response("ok");
});`

// A client that disconnects before the response starts aborts the
// function's req.signal, as with plain Deno (defect 10). Pipelining is off:
// the worker connection is closed (the pipelined case is below).
func TestClientDisconnectAbortsRequestSignal(t *testing.T) {
	g := startGateway(t, map[string]string{"abort/index.ts": abortFn},
		"--upstream-pipelining", "off", "--upstream-hangup-check", "100ms")
	c := sendWaitingRequest(t, g)
	c.Close()
	g.WaitLog(func(l logLine) bool { return l.Str("function") == "abort" && l.Msg() == "aborted" })
	if r := g.Get("/abort/ok"); r.Status != 200 {
		t.Fatalf("after: %d %q", r.Status, r.Body)
	}
}

// On a pipelined worker connection the gateway cannot close the connection
// (other clients' requests are queued on it): it sends the worker "abort
// <seq>" instead. A client that disconnects while its request is in the
// function aborts the function's req.signal; the request queued behind it
// on the same connection (one pipelined connection, a max age longer than
// the wait) is still answered, and nothing went over an exclusive
// connection.
func TestClientDisconnectAbortsRequestSignalPipelined(t *testing.T) {
	g := startGateway(t, map[string]string{"abort/index.ts": abortFn, "abort/function.json": `{"maxWorkers": 1}`},
		"--upstream-pipeline-conns", "1", "--upstream-pipeline-max-age", "1m", "--upstream-pipeline-slow", "1m",
		"--upstream-hangup-check", "100ms", "--internal-key", internalKey)
	for i := 0; i < 3; i++ {
		if r := g.Get("/abort/ok"); r.Status != 200 {
			t.Fatalf("warm-up: %d %q", r.Status, r.Body)
		}
	}
	c := sendWaitingRequest(t, g)

	queued := make(chan Response, 1)
	go func() {
		r, err := g.try("GET", "/abort/ok", nil, nil)
		if err != nil {
			r.Status, r.Body = 0, []byte(err.Error())
		}
		queued <- r
	}()
	// The queued request holds its worker slot before it is written behind
	// the waiting one (microseconds later, well within a hang-up check).
	deadline := time.Now().Add(eventTimeout)
	for scrape(t, g, "")[`edgeway_in_flight_requests{function="abort"}`] < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second request never got in flight")
		}
		time.Sleep(20 * time.Millisecond) // polling, not synchronisation
	}
	c.Close()
	g.WaitLog(func(l logLine) bool { return l.Str("function") == "abort" && l.Msg() == "aborted" })
	select {
	case r := <-queued:
		if r.Status != 200 || string(r.Body) != "ok" {
			t.Fatalf("queued request: %d %q", r.Status, r.Body)
		}
	case <-time.After(eventTimeout):
		t.Fatal("the queued request was never answered")
	}
	g.Signal(syscall.SIGTERM)
	stats := g.WaitLog(func(l logLine) bool { return l.Msg() == "function stopped" && l.Str("function") == "abort" })
	if stats.Int("exclusive") != 0 || stats.Int("pipelined") < 5 {
		t.Fatalf("pipelined %d, exclusive %d: want every request pipelined", stats.Int("pipelined"), stats.Int("exclusive"))
	}
}

// sendWaitingRequest sends GET /abort/wait on a connection of its own and
// returns that connection once the function has started waiting.
func sendWaitingRequest(t *testing.T, g *Gateway) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(g.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /abort/wait HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	g.WaitLog(func(l logLine) bool { return l.Str("function") == "abort" && l.Msg() == "waiting" })
	return c
}
