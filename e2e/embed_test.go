package e2e

// The server package in-process, with real Deno workers: a host mounts the
// gateway in its net/http server next to its own route, with a custom
// authenticator and hooks (issue #17).

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"edgeway.dev/edgeway/server"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

const embedWhoami = `Deno.serve((req) => {
  console.log("whoami called");
  return new Response(req.headers.get("x-auth-claims") ?? "none");
});`

// stream writes "first", then "second" once a request with ?release
// arrives at the same worker (--max-workers 1).
const embedStream = `let release = () => {};
Deno.serve((req) => {
  if (new URL(req.url).searchParams.has("release")) { release(); return new Response("released"); }
  const body = new ReadableStream({
    async start(c) {
      c.enqueue(new TextEncoder().encode("first\n"));
      await new Promise((r) => release = r);
      c.enqueue(new TextEncoder().encode("second\n"));
      c.close();
    },
  });
  return new Response(body);
});`

const embedEcho = `Deno.serve(async (req) => new Response(await req.arrayBuffer()));`

const embedWS = `Deno.serve((req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onmessage = (e) => socket.send("echo " + e.data);
  return response;
});`

// userAuth lets in x-user: ann as {"sub":"ann","role":"admin"}.
type userAuth struct{ ann *server.Claims }

func (a userAuth) Credentials(ctx *fasthttp.RequestCtx) []byte {
	return ctx.Request.Header.Peek("x-user")
}

func (a userAuth) Verify(user []byte, _ time.Time) (*server.Claims, error) {
	if string(user) == "ann" {
		return a.ann, nil
	}
	return nil, errors.New("unknown user")
}

// hookLog collects hook calls on channels (never blocking the hook).
type hookLog struct {
	ready, cold, logs, wsOpen, wsClose, wsErr chan string
	stats                                     chan server.RequestStats
	statsCalls                                atomic.Int32
}

func send[T any](c chan T, v T) {
	select {
	case c <- v:
	default:
	}
}

func waitFor[T any](t *testing.T, c chan T, what string, ok func(T) bool) T {
	t.Helper()
	deadline := time.After(eventTimeout)
	for {
		select {
		case v := <-c:
			if ok(v) {
				return v
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, eventTimeout)
		}
	}
}

func TestServerPackageMountedInNetHTTP(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"whoami/index.ts": embedWhoami,
		"stream/index.ts": embedStream,
		"echo/index.ts":   embedEcho,
		"ws/index.ts":     embedWS,
	})
	ann, err := server.NewClaims(map[string]any{"sub": "ann", "role": "admin"})
	if err != nil {
		t.Fatal(err)
	}
	h := &hookLog{ready: make(chan string, 16), cold: make(chan string, 16), logs: make(chan string, 64),
		wsOpen: make(chan string, 4), wsClose: make(chan string, 4), wsErr: make(chan string, 4), stats: make(chan server.RequestStats, 64)}
	hookPanics := metrics.GetOrCreateCounter(`edgeway_panics_total{where="hook"}`)
	panicsBefore := hookPanics.Get()
	srv, err := server.New(server.Config{
		FunctionsDir:  dir,
		Deno:          denoPath(t),
		Authenticator: userAuth{ann},
		Flags:         []string{"--max-workers=1", "--log-level=warn"},
		LogOutput:     io.Discard,
		Hooks: server.Hooks{
			OnFunctionReady: func(fn string) { send(h.ready, fn) },
			OnFunctionCold:  func(fn string) { send(h.cold, fn) },
			OnLog:           func(l server.LogLine) { send(h.logs, l.Function+": "+l.Line) },
			OnRequestStats: func(st server.RequestStats) {
				if h.statsCalls.Add(1) == 1 {
					panic("a bug in the host's hook")
				}
				send(h.stats, st)
			},
			OnAuthFailure: func(ctx *fasthttp.RequestCtx, fn string, err error) {
				ctx.Response.Reset()
				ctx.SetStatusCode(http.StatusForbidden)
				ctx.SetBodyString("no entry to " + fn + ": " + err.Error())
			},
			OnWebSocketConnect: func(fn, _ string) { send(h.wsOpen, fn) },
			OnWebSocketClose:   func(c server.WebSocketClose) { send(h.wsClose, c.Function+" "+c.ClosedBy) },
			OnWebSocketError:   func(fn, _ string, err error) { send(h.wsErr, fn+": "+err.Error()) },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/own", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the host's own route") })
	mux.Handle("/fn/", http.StripPrefix("/fn", srv.HTTPHandler()))
	host := httptest.NewServer(mux)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			host.Close()
			srv.Shutdown(context.Background())
		}
	})
	client := &http.Client{Timeout: eventTimeout}
	get := func(path string, header map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", host.URL+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if st, body := get("/own", nil); st != 200 || body != "the host's own route" {
		t.Fatalf("host route: %d %q", st, body)
	}
	// The custom authenticator's claims reach the function as a JWT's do;
	// a client's own X-Auth-Claims never does. The first request's stats
	// hook panics: the request is answered all the same.
	st, body := get("/fn/whoami", map[string]string{"x-user": "ann", "X-Auth-Claims": "forged"})
	js, _ := base64.RawURLEncoding.DecodeString(body)
	var claims map[string]any
	if st != 200 || json.Unmarshal(js, &claims) != nil || claims["sub"] != "ann" || claims["role"] != "admin" {
		t.Fatalf("whoami: %d %q (%s)", st, body, js)
	}
	if hookPanics.Get() != panicsBefore+1 {
		t.Fatalf("edgeway_panics_total{where=hook} %d -> %d, want +1", panicsBefore, hookPanics.Get())
	}
	// HEAD keeps the length a GET would have.
	req, _ := http.NewRequest("HEAD", host.URL+"/fn/whoami", nil)
	req.Header.Set("x-user", "ann")
	if resp, err := client.Do(req); err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) {
		t.Fatalf("HEAD: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// OnAuthFailure writes its own refusal.
	if st, body := get("/fn/whoami", map[string]string{"x-user": "bob"}); st != 403 || body != "no entry to whoami: unknown user" {
		t.Fatalf("refusal: %d %q", st, body)
	}
	if st, body := get("/fn/functions/v1/whoami", map[string]string{"x-user": "ann"}); st != 200 || body == "none" {
		t.Fatalf("long route: %d %q", st, body)
	}
	waitFor(t, h.stats, "stats of the refusal", func(s server.RequestStats) bool { return s.Function == "whoami" && s.Status == 403 })
	waitFor(t, h.stats, "stats of a success", func(s server.RequestStats) bool {
		return s.Function == "whoami" && s.Status == 200 && s.Duration > 0 && s.ResponseBytes == len(body)
	})
	waitFor(t, h.ready, "OnFunctionReady", func(fn string) bool { return fn == "whoami" })
	waitFor(t, h.logs, "OnLog", func(l string) bool { return l == "whoami: whoami called" })
	if fs, ok := srv.Stats("whoami"); !ok || fs.Requests < 3 || fs.Running != 1 || len(fs.Workers) != 1 || fs.Workers[0].PID == 0 {
		t.Fatalf("stats: %+v %v", fs, ok)
	}
	if _, ok := srv.Stats("nope"); ok || len(srv.Functions()) != 4 {
		t.Fatalf("unknown function has stats, or %d functions", len(srv.Functions()))
	}

	// A chunked request body streams to the worker and back.
	payload := strings.Repeat("0123456789abcdef", 8<<10)
	req, _ = http.NewRequest("POST", host.URL+"/fn/echo", io.MultiReader(strings.NewReader(payload)))
	req.Header.Set("x-user", "ann")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	echoed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(echoed) != payload {
		t.Fatalf("echo: %d, %d bytes back of %d", resp.StatusCode, len(echoed), len(payload))
	}

	// A streamed response reaches the client piece by piece: the first
	// line arrives while the function still holds the rest back.
	req, _ = http.NewRequest("GET", host.URL+"/fn/stream", nil)
	req.Header.Set("x-user", "ann")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	if st, body := get("/fn/stream?release", map[string]string{"x-user": "ann"}); st != 200 || body != "released" {
		t.Fatalf("release: %d %q", st, body)
	}
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	if string(rest) != "second\n" {
		t.Fatalf("rest of the stream %q", rest)
	}

	// A WebSocket through the mounted handler: the connection is handed
	// over to the gateway.
	d := websocket.Dialer{HandshakeTimeout: eventTimeout}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(host.URL, "http")+"/fn/ws", http.Header{"x-user": {"ann"}})
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	ws.SetReadDeadline(time.Now().Add(eventTimeout))
	if err := ws.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "echo hi" {
		t.Fatalf("websocket echo %q %v", msg, err)
	}
	waitFor(t, h.wsOpen, "OnWebSocketConnect", func(fn string) bool { return fn == "ws" })
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	ws.ReadMessage() // the close reply
	ws.Close()
	waitFor(t, h.wsClose, "OnWebSocketClose", func(s string) bool { return s == "ws client" })

	// A function that does not upgrade: the client's handshake fails and
	// OnWebSocketError says why.
	if _, _, err := d.Dial("ws"+strings.TrimPrefix(host.URL, "http")+"/fn/whoami", http.Header{"x-user": {"ann"}}); err == nil {
		t.Fatal("a function answering 200 made a WebSocket")
	}
	waitFor(t, h.wsErr, "OnWebSocketError", func(s string) bool {
		return s == "whoami: the function answered the upgrade with status 200"
	})

	// The gateway's own listener serves the same functions.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	req, _ = http.NewRequest("GET", "http://"+ln.Addr().String()+"/whoami", nil)
	req.Header.Set("x-user", "ann")
	if resp, err = client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("own listener: %v %v", resp, err)
	}
	resp.Body.Close()

	// Handler serves the same in a host's own fasthttp server, a POST body
	// included.
	fln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fhost := &fasthttp.Server{Handler: srv.Handler(), StreamRequestBody: true}
	go fhost.Serve(fln)
	defer fhost.Shutdown()
	req, _ = http.NewRequest("POST", "http://"+fln.Addr().String()+"/echo", strings.NewReader(payload))
	req.Header.Set("x-user", "ann")
	if resp, err = client.Do(req); err != nil {
		t.Fatalf("fasthttp host: %v", err)
	}
	echoed, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(echoed) != payload {
		t.Fatalf("fasthttp host echo: %d, %d bytes back", resp.StatusCode, len(echoed))
	}

	host.Close()
	stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	waitFor(t, h.cold, "OnFunctionCold at shutdown", func(fn string) bool { return fn == "whoami" })
}
