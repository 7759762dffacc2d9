package e2e

import (
	"strings"
	"testing"

	"github.com/fasthttp/websocket"
)

// wsPid echoes every message after telling the client which worker it
// reached.
const wsPid = `Deno.serve((req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onopen = () => socket.send("pid " + Deno.pid);
  socket.onmessage = (e) => socket.send(e.data);
  return response;
});`

// dialPid opens a WebSocket and returns it with the worker pid it reached.
func dialPid(t *testing.T, g *Gateway, path string) (*websocket.Conn, string) {
	t.Helper()
	c, _ := dialWS(t, wsURL(g, path), nil)
	_, msg, err := c.ReadMessage()
	if err != nil || !strings.HasPrefix(string(msg), "pid ") {
		t.Fatalf("first message %q %v", msg, err)
	}
	return c, strings.TrimPrefix(string(msg), "pid ")
}

// expectRefusedUpgrade dials and expects the gateway's 503 OVERLOADED.
func expectRefusedUpgrade(t *testing.T, g *Gateway, path string) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: eventTimeout}
	c, resp, err := d.Dial(wsURL(g, path), nil)
	if err == nil {
		c.Close()
		t.Fatal("upgrade accepted beyond the cap")
	}
	if resp == nil || resp.StatusCode != 503 || resp.Header.Get("X-Edgeway-Error") != "OVERLOADED" {
		t.Fatalf("upgrade beyond the cap: %v %+v", err, resp)
	}
}

// echo sends msg and expects it back.
func echo(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
		t.Fatalf("echo of %q: %q %v", msg, got, err)
	}
}

func wsClosedLog(code int, by string) func(logLine) bool {
	return func(l logLine) bool {
		return l.Msg() == "websocket closed" && l.Int("code") == code && l.Str("closed_by") == by
	}
}

func TestWebSocketPerWorkerCapSpreadsThenRefuses(t *testing.T) {
	g := startGateway(t, map[string]string{
		"ws/index.ts":      wsPid,
		"ws/function.json": `{"maxWorkers": 3, "maxWebSocketConnections": 2}`,
	})
	perPid := map[string]int{}
	var conns []*websocket.Conn
	for i := 0; i < 6; i++ {
		c, pid := dialPid(t, g, "/ws")
		perPid[pid]++
		conns = append(conns, c)
	}
	if len(perPid) != 3 {
		t.Fatalf("6 connections with a cap of 2 per worker landed on %d workers: %v", len(perPid), perPid)
	}
	for pid, n := range perPid {
		if n != 2 {
			t.Fatalf("worker %s holds %d connections, cap 2: %v", pid, n, perPid)
		}
	}
	expectRefusedUpgrade(t, g, "/ws")
	for i, c := range conns {
		echo(t, c, "still here "+itoa(i))
	}
	// A closed session frees its slot.
	conns[0].WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	g.WaitLog(wsClosedLog(1000, "client"))
	c, _ := dialPid(t, g, "/ws")
	echo(t, c, "after a slot freed")
}

func TestWebSocketGatewayCapRefuses(t *testing.T) {
	g := startGateway(t, map[string]string{"ws/index.ts": wsPid, "other/index.ts": wsPid}, "--max-websockets", "2")
	dialPid(t, g, "/ws")
	dialPid(t, g, "/other")
	expectRefusedUpgrade(t, g, "/ws")
	expectRefusedUpgrade(t, g, "/other")
	// Plain requests are not affected by the WebSocket cap.
	if r := g.Get("/ws"); r.Status == 503 {
		t.Fatalf("HTTP request refused by the WebSocket cap: %d %s", r.Status, r.Body)
	}
}

func TestWebSocketIdleTimeoutClosesSilentConnection(t *testing.T) {
	g := startGateway(t, map[string]string{
		"ws/index.ts":      wsPid,
		"ws/function.json": `{"websocketIdleTimeout": 300}`,
	})
	c, _ := dialPid(t, g, "/ws")
	expectClose(t, c, websocket.CloseGoingAway)
	g.WaitLog(wsClosedLog(1001, "gateway"))
}

func TestWebSocketNotKeepingWorkerAliveIsClosedByIdleStop(t *testing.T) {
	g := startGateway(t, map[string]string{
		"ws/index.ts":      wsPid,
		"ws/function.json": `{"websocketKeepsAlive": false, "idleTimeout": 300}`,
	})
	c, pid := dialPid(t, g, "/ws")
	expectClose(t, c, websocket.CloseGoingAway)
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "stopping worker" && l.Str("reason") == "idle" && itoa(l.Int("pid")) == pid
	})
}

func TestWebSocketDrainOnRecycle(t *testing.T) {
	g := startGateway(t, map[string]string{
		// keep: drains for longer than the test; short: 1001 soon after.
		"keep/index.ts":       wsPid,
		"keep/function.json":  `{"workerMaxDuration": 1000, "websocketDrainTimeout": 600000}`,
		"short/index.ts":      wsPid,
		"short/function.json": `{"workerMaxDuration": 1000, "websocketDrainTimeout": 100}`,
	})
	kept, keptPid := dialPid(t, g, "/keep")
	short, _ := dialPid(t, g, "/short")
	stopping := func(fn, pid string) func(logLine) bool {
		return func(l logLine) bool {
			return l.Msg() == "stopping worker" && l.Str("function") == fn && l.Str("reason") == "max duration" && (pid == "" || itoa(l.Int("pid")) == pid)
		}
	}
	g.WaitLog(stopping("keep", keptPid))
	// The recycled worker keeps its open connection, and new upgrades go
	// to its replacement.
	echo(t, kept, "still served while draining")
	if _, pid := dialPid(t, g, "/keep"); pid == keptPid {
		t.Fatalf("a new upgrade reached the recycled worker %s", pid)
	}
	// Once its drain timeout passes, the other's connection gets 1001.
	expectClose(t, short, websocket.CloseGoingAway)
	// Closing the kept connection lets its worker finish.
	kept.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "worker stopped" && l.Str("function") == "keep" && itoa(l.Int("pid")) == keptPid
	})
}

func TestWebSocketReloadClosesWithGoingAway(t *testing.T) {
	g := startGateway(t, map[string]string{
		"ws/index.ts":      wsPid,
		"ws/function.json": `{"websocketDrainTimeout": 100}`,
	}, "--watch", "--watch-debounce", "100ms")
	c, oldPid := dialPid(t, g, "/ws")
	write(t, g, "ws/index.ts", wsPid+"\n// v2\n")
	reloaded(g, "ws", 1)
	expectClose(t, c, websocket.CloseGoingAway)
	if _, pid := dialPid(t, g, "/ws"); pid == oldPid {
		t.Fatalf("upgrade after the reload reached the old worker %s", pid)
	}
}

func TestWebSocketMetrics(t *testing.T) {
	g := startGateway(t, map[string]string{"ws/index.ts": wsPid}, "--internal-key", internalKey)
	c, _ := dialPid(t, g, "/ws")
	echo(t, c, "0123456789")
	open := scrape(t, g, "")
	expectMetrics(t, open, map[string]float64{
		`edgeway_websockets_open{function="ws"}`:         1,
		`edgeway_websockets_opened_total{function="ws"}`: 1,
	})
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "app says bye"))
	g.WaitLog(wsClosedLog(4000, "client"))
	m := scrape(t, g, "")
	expectMetrics(t, m, map[string]float64{
		`edgeway_websockets_open{function="ws"}`:                    0,
		`edgeway_websocket_closed_total{function="ws",code="4xxx"}`: 1,
	})
	// Client frames: 6-byte header + 10 bytes, then the close frame; the
	// worker's: "pid N", the echo and its close reply.
	if in := m[`edgeway_websocket_bytes_total{function="ws",direction="in"}`]; in < 16 {
		t.Errorf("bytes in = %v, want at least 16", in)
	}
	if out := m[`edgeway_websocket_bytes_total{function="ws",direction="out"}`]; out < 12 {
		t.Errorf("bytes out = %v, want at least 12", out)
	}
}
