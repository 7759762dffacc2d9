package e2e

import (
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// The functions below are written the way real projects write them, for
// `deno run` and for Supabase: nothing in them knows about edgeway.

// guardedMain serves only when it is the program's entry, the guard Deno's
// own templates (deno init --serve) use.
const guardedMain = `export function handler(_req: Request): Response {
  return Response.json({
    main: import.meta.main,
    mainModule: Deno.mainModule,
    self: import.meta.url,
    args: Deno.args,
    control: Deno.env.get("EDGEWAY_CONTROL") ?? null,
    autoServe: Deno.env.get("DENO_AUTO_SERVE") ?? null,
    serveAddress: Deno.env.get("DENO_SERVE_ADDRESS") ?? null,
  });
}

if (import.meta.main) {
  Deno.serve(handler);
}
`

func TestMainModuleIsTheEntry(t *testing.T) {
	g := startGateway(t, map[string]string{
		"guarded/index.ts": guardedMain,
		// A profile without env access: the bootstrap still reads and
		// deletes its variables.
		"strict/index.ts":      guardedMain,
		"strict/function.json": `{"permissions": "strict"}`,
	})
	for _, name := range []string{"guarded", "strict"} {
		t.Run(name, func(t *testing.T) { checkMainModule(t, g, name) })
	}
}

func checkMainModule(t *testing.T, g *Gateway, name string) {
	r := g.Get("/functions/v1/" + name)
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if m["main"] != true {
		t.Errorf("import.meta.main = %v, want true", m["main"])
	}
	if self, _ := m["self"].(string); m["mainModule"] != self || !strings.HasSuffix(self, "/"+name+"/index.ts") {
		t.Errorf("Deno.mainModule = %v, want the entry %v", m["mainModule"], m["self"])
	}
	if args, _ := m["args"].([]any); len(args) != 0 {
		t.Errorf("Deno.args = %v, want empty", m["args"])
	}
	for _, k := range []string{"control", "autoServe", "serveAddress"} {
		if m[k] != nil {
			t.Errorf("%s is visible to the function: %v", k, m[k])
		}
	}
}

// finishedAtTopLevel awaits its server at top level and logs from
// onListen, as Deno's docs show; the handler reports what onListen got.
const finishedAtTopLevel = `let listened: Deno.Addr | null = null;
const server = Deno.serve({
  port: 8000,
  onListen(addr) {
    listened = addr;
    console.log("onListen called with " + addr.transport);
  },
}, (_req) => Response.json({ listened, addr: server.addr.transport }));
await server.finished;
console.log("server finished");
`

func TestServeFinishedAtTopLevelAndOnListen(t *testing.T) {
	g := startGateway(t, map[string]string{"finished/index.ts": finishedAtTopLevel})
	r := g.Get("/functions/v1/finished")
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	listened, _ := m["listened"].(map[string]any)
	if listened["transport"] != "unix" || m["addr"] != "unix" {
		t.Fatalf("onListen got %v, server.addr %v; want the worker's unix socket", m["listened"], m["addr"])
	}
	g.WaitLog(func(l logLine) bool { return l.Msg() == "onListen called with unix" })
	// The real server's finished settles when the worker is stopped.
	g.Signal(syscall.SIGTERM)
	g.WaitLog(func(l logLine) bool { return l.Msg() == "server finished" })
}

// nodeHTTP is a node:http server on a hard-coded port, the shape express,
// fastify and @hono/node-server reduce to.
func nodeHTTP(port int) string {
	return `import http from "node:http";

const server = http.createServer((req, res) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ url: req.url, method: req.method }));
});
server.listen(` + strconv.Itoa(port) + `, () => console.log("listening on port ` + strconv.Itoa(port) + `"));
`
}

// expressApp is Supabase's express example: routes carry the function's
// name, the app listens on a hard-coded port.
func expressApp(port int) string {
	return `import express from "npm:express@4.21.2";

const app = express();
app.use(express.json());
const port = ` + strconv.Itoa(port) + `;

app.get("/express/hello", (req, res) => {
  res.send("Hello World!");
});
app.post("/express/echo", (req, res) => {
  res.json({ got: req.body });
});

app.listen(port, () => {
  console.log("Example app listening on port " + port);
});
`
}

// fastifyApp listens the way fastify's docs show; fastify reads
// server.address() as soon as it listens (to log it), which Deno answers
// with null for a server moved onto a Unix socket.
func fastifyApp(port int) string {
	return `import Fastify from "npm:fastify@5.2.1";

const fastify = Fastify({ logger: true });
fastify.get("/fastify/hello", async () => ({ hello: "fastify" }));
await fastify.listen({ port: ` + strconv.Itoa(port) + ` });
`
}

// honoNodeApp is @hono/node-server's serve with its listen callback, which
// gets server.address().
func honoNodeApp(port int) string {
	return `import { serve } from "npm:@hono/node-server@1.13.7";
import { Hono } from "npm:hono@4.6.14";

const app = new Hono();
app.get("/hono/hello", (c) => c.text("Hello Hono!"));
serve({ fetch: app.fetch, port: ` + strconv.Itoa(port) + ` }, (info) => {
  console.log("hono listening on port " + info.port);
});
`
}

// tcpClosed fails the test if something accepts on 127.0.0.1:port.
func tcpClosed(t *testing.T, port int) {
	t.Helper()
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		c, err := net.DialTimeout("tcp", host+":"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			t.Errorf("the function answers on %s:%d, outside the gateway", host, port)
		}
	}
}

func TestNodeHTTPServersServeOnTheWorkerSocket(t *testing.T) {
	ports := []int{freePort(t), freePort(t)}
	g := startGateway(t, map[string]string{
		"node/index.ts":    nodeHTTP(ports[0]),
		"express/index.ts": expressApp(ports[1]),
	}, "--boot-timeout", "120s")

	r := g.Get("/functions/v1/node/a?b=1")
	if r.Status != 200 {
		t.Fatalf("node:http: status %d: %s", r.Status, r.Body)
	}
	if m := r.JSON(t); m["url"] != "/node/a?b=1" || m["method"] != "GET" {
		t.Errorf("node:http saw %v", m)
	}
	tcpClosed(t, ports[0])

	r = g.Get("/functions/v1/express/hello")
	if r.Status != 200 || string(r.Body) != "Hello World!" {
		t.Fatalf("express: %d %q", r.Status, r.Body)
	}
	r = g.Do("POST", "/functions/v1/express/echo", strings.NewReader(`{"a":1}`), map[string]string{"Content-Type": "application/json"})
	if r.Status != 200 || string(r.Body) != `{"got":{"a":1}}` {
		t.Fatalf("express POST: %d %q", r.Status, r.Body)
	}
	tcpClosed(t, ports[1])
}

// Frameworks that read server.address() when they listen: fastify and
// @hono/node-server failed to boot (Deno answers null for the Unix socket
// the server is moved onto).
func TestNodeFrameworksThatReadTheirAddress(t *testing.T) {
	ports := []int{freePort(t), freePort(t)}
	g := startGateway(t, map[string]string{
		"fastify/index.ts": fastifyApp(ports[0]),
		"hono/index.ts":    honoNodeApp(ports[1]),
	}, "--boot-timeout", "120s")

	r := g.Get("/functions/v1/fastify/hello")
	if r.Status != 200 || r.JSON(t)["hello"] != "fastify" {
		t.Fatalf("fastify: %d %q", r.Status, r.Body)
	}
	tcpClosed(t, ports[0])
	r = g.Get("/functions/v1/hono/hello")
	if r.Status != 200 || string(r.Body) != "Hello Hono!" {
		t.Fatalf("@hono/node-server: %d %q", r.Status, r.Body)
	}
	g.WaitLog(func(l logLine) bool { return l.Msg() == "hono listening on port "+strconv.Itoa(ports[1]) })
	tcpClosed(t, ports[1])
}

// twoListeners serves on its socket and then tries a listener of its own
// on every interface, and a second Deno.serve on a port.
func twoListeners(port int) string {
	p := strconv.Itoa(port)
	return `const first = Deno.serve((_req) => Response.json({ listen, second }));
let listen = "listening";
try {
  Deno.listen({ port: ` + p + ` });
} catch (e) {
  listen = e.name;
}
const again = Deno.serve({ port: ` + p + ` }, () => new Response("second"));
const second = again === first ? "same server" : "another server";
`
}

func TestFunctionCannotListenOnAllInterfaces(t *testing.T) {
	port := freePort(t)
	g := startGateway(t, map[string]string{"two/index.ts": twoListeners(port)})
	r := g.Get("/functions/v1/two")
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if m["listen"] != "NotCapable" || m["second"] != "same server" {
		t.Errorf("Deno.listen on all interfaces: %v, second Deno.serve: %v; want NotCapable, same server", m["listen"], m["second"])
	}
	tcpClosed(t, port)
}

// A DENO_SERVE_ADDRESS in the gateway's environment or a .env never moves a
// worker: the gateway's unix:<worker socket> wins for node:http too.
func TestNodeHTTPIgnoresOutsideServeAddress(t *testing.T) {
	outside, own := freePort(t), freePort(t)
	t.Setenv("DENO_SERVE_ADDRESS", "tcp:127.0.0.1:"+strconv.Itoa(outside))
	g := startGateway(t, map[string]string{
		".env":          "DENO_SERVE_ADDRESS=tcp:127.0.0.1:" + strconv.Itoa(outside) + "\n",
		"node/index.ts": nodeHTTP(own),
	})
	r := g.Get("/functions/v1/node")
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	tcpClosed(t, outside)
	tcpClosed(t, own)
}

// wsOnNodeServer is the npm ws package on a node:http server, as chat
// examples write it.
func wsOnNodeServer(port int) string {
	return `import http from "node:http";
import { WebSocketServer } from "npm:ws@8.18.0";

const server = http.createServer((_req, res) => res.end("plain"));
const wss = new WebSocketServer({ server });
wss.on("connection", (ws) => {
  ws.on("message", (m) => ws.send("echo " + m));
});
server.listen(` + strconv.Itoa(port) + `);
`
}

func TestNodeWebSocketServerUpgrades(t *testing.T) {
	port := freePort(t)
	g := startGateway(t, map[string]string{"chat/index.ts": wsOnNodeServer(port)}, "--boot-timeout", "120s")
	c, _ := dialWS(t, wsURL(g, "/functions/v1/chat"), nil)
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(eventTimeout))
	_, msg, err := c.ReadMessage()
	if err != nil || string(msg) != "echo hi" {
		t.Fatalf("read %q, %v; want echo hi", msg, err)
	}
	if r := g.Get("/functions/v1/chat"); r.Status != 200 || string(r.Body) != "plain" {
		t.Errorf("plain request: %d %q", r.Status, r.Body)
	}
	tcpClosed(t, port)
}
