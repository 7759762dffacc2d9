package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// startNginx runs real nginx with examples/nginx/edgeway.conf in front of g.
func startNginx(t *testing.T, g *Gateway) string {
	t.Helper()
	return startNginxWith(t, g, "")
}

// startNginxWith is startNginx with extra directives (such as locations)
// at the top of the server block.
func startNginxWith(t *testing.T, g *Gateway, extra string) string {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/nginx"); statErr != nil {
			t.Fatal("nginx not installed (.ci/run installs it from apt)")
		}
		nginx = "/usr/sbin/nginx"
	}
	site, err := os.ReadFile("../examples/nginx/edgeway.conf")
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := strings.Replace(string(site), "server 127.0.0.1:3100;", "server "+strings.TrimPrefix(g.URL, "http://")+";", 1)
	conf = strings.Replace(conf, "listen 80;", "listen 127.0.0.1:"+itoa(port)+";\n"+extra, 1)
	dir := t.TempDir()
	main := "daemon off;\nmaster_process on;\nworker_processes 1;\npid " + filepath.Join(dir, "nginx.pid") + ";\nerror_log " + filepath.Join(dir, "error.log") + " warn;\n" +
		"events { worker_connections 1024; }\nhttp {\n access_log off;\n client_body_temp_path " + dir + ";\n proxy_temp_path " + dir + ";\n" +
		" fastcgi_temp_path " + dir + ";\n uwsgi_temp_path " + dir + ";\n scgi_temp_path " + dir + ";\n" + conf + "\n}\n"
	confPath := filepath.Join(dir, "nginx.conf")
	os.WriteFile(confPath, []byte(main), 0o644)
	cmd := exec.Command(nginx, "-c", confPath, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	if out, err := exec.Command(nginx, "-t", "-c", confPath, "-p", dir, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		cmd.Wait()
	})
	addr := "127.0.0.1:" + itoa(port)
	deadline := time.Now().Add(eventTimeout)
	for { // nginx prints nothing when ready: poll its port
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// clientFrom returns an HTTP client whose connections come from local, an
// address of the loopback range, so the real client differs from nginx.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{Timeout: 2 * eventTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// wsBehindNginx first reports the client address it was given, then
// echoes every message.
const wsBehindNginx = `Deno.serve((req) => {
  const xff = req.headers.get("x-forwarded-for");
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onopen = () => socket.send("xff " + xff);
  socket.onmessage = (e) => socket.send(e.data);
  return response;
});`

func TestBehindNginx(t *testing.T) {
	g := startGateway(t, map[string]string{
		"echo/index.ts":   echoURL,
		"stream/index.ts": sseReleaseFn,
		"ws/index.ts":     wsBehindNginx,
	}, "--trusted-proxies", "127.0.0.1/32")
	front := startNginx(t, g)
	c := clientFrom("127.0.0.2")

	req, _ := http.NewRequest("GET", front+"/functions/v1/echo/a?b=1", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // a spoofing attempt
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	decodeJSON(t, resp, &body)
	if body["pathq"] != "/echo/a?b=1" {
		t.Fatalf("through nginx the function saw %v", body["pathq"])
	}
	h := body["headers"].(map[string]any)
	if h["x-forwarded-for"] != "127.0.0.2" {
		t.Fatalf("client IP seen by the function: %v (want the real client 127.0.0.2, not nginx or the spoofed value)", h["x-forwarded-for"])
	}

	// Server-sent events arrive one by one through nginx too.
	resp, err = c.Get(front + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := 1; i <= 3; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != "data: "+itoa(i)+"\n" {
			t.Fatalf("event %d through nginx: %q %v", i, line, err)
		}
		br.ReadString('\n')
		if i < 3 {
			r, err := c.Get(front + "/stream/next")
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
		}
	}

	// A WebSocket echo: nginx passes the upgrade on (the example sets Upgrade
	// and Connection: upgrade), edgeway splices it to the worker.
	d := websocket.Dialer{HandshakeTimeout: eventTimeout,
		NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}
	ws, wresp, err := d.Dial("ws"+strings.TrimPrefix(front, "http")+"/functions/v1/ws",
		http.Header{"X-Forwarded-For": {"6.6.6.6"}})
	if err != nil {
		status := 0
		if wresp != nil {
			status = wresp.StatusCode
		}
		t.Fatalf("WebSocket through nginx: %v (status %d)", err, status)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(eventTimeout))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "xff 127.0.0.2" {
		t.Fatalf("WebSocket through nginx: first message %q %v, want the real client 127.0.0.2", msg, err)
	}
	big := make([]byte, 256<<10) // more than nginx's proxy buffer
	rand.Read(big)
	for _, m := range []struct {
		kind int
		data []byte
	}{{websocket.TextMessage, []byte("hello through nginx")}, {websocket.BinaryMessage, []byte{0, 1, 2, 0xfe, 0xff}},
		{websocket.BinaryMessage, big}} {
		if err := ws.WriteMessage(m.kind, m.data); err != nil {
			t.Fatal(err)
		}
		kind, got, err := ws.ReadMessage()
		if err != nil || kind != m.kind || !bytes.Equal(got, m.data) {
			t.Fatalf("WebSocket echo of %d bytes through nginx: kind %d, %d bytes, %v", len(m.data), kind, len(got), err)
		}
	}
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("close handshake through nginx: %v", err)
	}
}
