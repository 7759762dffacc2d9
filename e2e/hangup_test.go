package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
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
// only exclusive worker connections are watched.
func TestClientDisconnectAbortsRequestSignal(t *testing.T) {
	g := startGateway(t, map[string]string{"abort/index.ts": abortFn},
		"--upstream-pipelining", "off", "--upstream-hangup-check", "100ms")
	addr := strings.TrimPrefix(g.URL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /abort/wait HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	g.WaitLog(func(l logLine) bool { return l.Str("function") == "abort" && l.Msg() == "waiting" })
	c.Close()
	g.WaitLog(func(l logLine) bool { return l.Str("function") == "abort" && l.Msg() == "aborted" })
	if r := g.Get("/abort/ok"); r.Status != 200 {
		t.Fatalf("after: %d %q", r.Status, r.Body)
	}
}
