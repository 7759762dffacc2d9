package e2e

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// sseFn streams one event, then waits until /sse/go is requested before
// the second one and the end: the test reads the first event while the
// function is still waiting.
const sseFn = `let release = null;
const waiting = new Promise((r) => (release = r));
const enc = new TextEncoder();
Deno.serve((req) => {
  if (new URL(req.url).pathname.endsWith("/go")) {
    release();
    return new Response("ok\n");
  }
  const body = new ReadableStream({
    async start(c) {
      c.enqueue(enc.encode("data: 0\n\n"));
      await waiting;
      c.enqueue(enc.encode("data: 1\n\n"));
      c.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
});
`

// An event a Deno function streams alone reaches the client while the
// function waits (the end of a streamed body is held for one write, never
// an event), and the rest of the stream is framed byte for byte.
func TestPerfStreamedEventIsNotHeld(t *testing.T) {
	g := startGateway(t, map[string]string{"sse/index.ts": sseFn})
	addr := strings.TrimPrefix(g.URL, "http://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(eventTimeout))
	io.WriteString(nc, "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(nc)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the head: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	if h := strings.ToLower(head.String()); !strings.HasPrefix(h, "http/1.1 200") || !strings.Contains(h, "transfer-encoding: chunked") {
		t.Fatalf("head %q", head.String())
	}
	read := func(want string) {
		t.Helper()
		got := make([]byte, len(want))
		if n, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("read %q, want %q: %v", got[:n], want, err)
		}
		if string(got) != want {
			t.Fatalf("stream bytes %q, want %q", got, want)
		}
	}
	// The function is waiting for /sse/go: this event must already be here.
	read("9\r\ndata: 0\n\n\r\n")
	if r := g.Get("/sse/go"); r.Status != 200 {
		t.Fatalf("/sse/go: %d", r.Status)
	}
	read("9\r\ndata: 1\n\n\r\n0\r\n\r\n")
}
