package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cristalhq/jwt/v5"
	"github.com/fasthttp/websocket"
)

// wsEcho echoes every message, reports the path it saw as its first
// message, and picks the "chat" subprotocol when offered.
const wsEcho = `Deno.serve((req) => {
  const u = new URL(req.url);
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("websocket only", { status: 426 });
  }
  if (u.searchParams.get("refuse")) return new Response("no thanks", { status: 403 });
  const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim());
  const { socket, response } = Deno.upgradeWebSocket(req, offered.includes("chat") ? { protocol: "chat" } : {});
  socket.onopen = () => socket.send("path " + u.pathname + u.search);
  socket.onmessage = (e) => socket.send(e.data);
  return response;
});`

func wsURL(g *Gateway, path string) string { return "ws" + strings.TrimPrefix(g.URL, "http") + path }

func dialWS(t *testing.T, url string, header http.Header) (*websocket.Conn, *http.Response) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: eventTimeout, Subprotocols: []string{"chat", "other"}}
	c, resp, err := d.Dial(url, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(eventTimeout))
	return c, resp
}

func TestWebSocketEchoThroughBothRoutes(t *testing.T) {
	g := startGateway(t, map[string]string{"ws/index.ts": wsEcho})
	big := make([]byte, 1<<20)
	rand.Read(big)
	for path, seen := range map[string]string{"/functions/v1/ws/room?id=7": "path /ws/room?id=7", "/ws/room?id=7": "path /room?id=7"} {
		c, resp := dialWS(t, wsURL(g, path), nil)
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "chat" {
			t.Fatalf("%s: subprotocol %q, want chat", path, got)
		}
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != seen {
			t.Fatalf("%s: first message %q %v, want %q", path, msg, err, seen)
		}
		for _, m := range []struct {
			kind int
			data []byte
		}{{websocket.TextMessage, []byte("hello")}, {websocket.BinaryMessage, []byte{0, 1, 2, 255}}, {websocket.BinaryMessage, big}} {
			if err := c.WriteMessage(m.kind, m.data); err != nil {
				t.Fatal(err)
			}
			kind, got, err := c.ReadMessage()
			if err != nil || kind != m.kind || !bytes.Equal(got, m.data) {
				t.Fatalf("%s: echo of %d bytes: kind %d, %d bytes, %v", path, len(m.data), kind, len(got), err)
			}
		}
		// A fragmented message: three frames, one message.
		w, _ := c.NextWriter(websocket.TextMessage)
		for _, part := range []string{"frag", "ment", "ed"} {
			w.Write([]byte(part))
			if f, ok := w.(interface{ Flush() error }); ok {
				f.Flush()
			}
		}
		w.Close()
		if _, got, err := c.ReadMessage(); err != nil || string(got) != "fragmented" {
			t.Fatalf("fragmented: %q %v", got, err)
		}
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	}
}

func TestWebSocketRefusedUpgradeAndAuth(t *testing.T) {
	secret := "an-e2e-secret-that-is-at-least-32-bytes-long!"
	g := startGateway(t, map[string]string{"ws/index.ts": wsEcho}, "--auth", "jwt", "--jwt-secret", secret)
	d := websocket.Dialer{HandshakeTimeout: eventTimeout}
	_, resp, err := d.Dial(wsURL(g, "/ws"), nil)
	if err == nil || resp == nil || resp.StatusCode != 401 || resp.Header.Get("X-Edgeway-Error") != "UNAUTHORIZED" {
		t.Fatalf("upgrade without a token: err %v resp %+v", err, resp)
	}
	tok := wsToken(t, secret, "ws-user")
	_, resp, err = d.Dial(wsURL(g, "/ws?refuse=1"), http.Header{"Authorization": {"Bearer " + tok}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("refused upgrade: err %v, status %v", err, resp)
	}
	c, _ := dialWS(t, wsURL(g, "/ws"), http.Header{"Authorization": {"Bearer " + tok}})
	if _, msg, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "path /") {
		t.Fatalf("authorized upgrade: %q %v", msg, err)
	}
}

func TestWebSocketTokenFromQuery(t *testing.T) {
	secret := "an-e2e-secret-that-is-at-least-32-bytes-long!"
	g := startGateway(t, map[string]string{"ws/index.ts": wsEcho}, "--auth", "jwt", "--jwt-secret", secret, "--jwt-token-from", "query", "--jwt-token-name", "jwt")
	c, _ := dialWS(t, wsURL(g, "/ws?jwt="+wsToken(t, secret, "q-user")), nil)
	if _, msg, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "path /") {
		t.Fatalf("token from the query: %q %v", msg, err)
	}
}

func TestWebSocketCloseCodesOnWorkerDeathAndShutdown(t *testing.T) {
	g := startGateway(t, map[string]string{"ws/index.ts": wsEcho})
	c, _ := dialWS(t, wsURL(g, "/ws"), nil)
	c.ReadMessage()
	// kill -9 of the worker: the gateway closes the client with 1011.
	for _, pid := range g.WorkerPIDs() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	expectClose(t, c, websocket.CloseInternalServerErr)
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "websocket closed" && l.Int("code") == 1011 && l.Str("closed_by") == "gateway"
	})
	g.WaitLog(func(l logLine) bool { return l.Msg() == "worker died" })
	// SIGTERM: every open connection gets 1001 (going away), then the
	// gateway exits cleanly.
	var conns []*websocket.Conn
	for i := 0; i < 3; i++ {
		c, _ := dialWS(t, wsURL(g, "/ws"), nil)
		c.ReadMessage()
		conns = append(conns, c)
	}
	g.Signal(syscall.SIGTERM)
	for _, c := range conns {
		expectClose(t, c, websocket.CloseGoingAway)
	}
	if code := g.WaitExit(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// expectClose reads until the connection ends and checks the close code
// the client received.
func expectClose(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(eventTimeout))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("connection ended with %v, want close code %d", err, code)
		}
		return
	}
}

func TestManyConcurrentWebSockets(t *testing.T) {
	g := startGateway(t, map[string]string{"ws/index.ts": wsEcho}, "--max-websocket-connections", "0")
	const n = 500
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i], _ = dialWS(t, wsURL(g, "/ws"), nil)
		conns[i].ReadMessage()
	}
	// Every connection sends and reads its echo at the same time.
	errs := make(chan error, n)
	for i, c := range conns {
		go func() {
			msg := "m" + itoa(i)
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				errs <- err
				return
			}
			if _, got, err := c.ReadMessage(); err != nil || string(got) != msg {
				errs <- fmt.Errorf("conn %d: %q %v", i, got, err)
				return
			}
			errs <- nil
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// wsToken signs an HS256 Supabase user token for sub.
func wsToken(t *testing.T, secret, sub string) string {
	t.Helper()
	return mint(t, hsSigner(t, jwt.HS256, []byte(secret)), userClaims(sub))
}
