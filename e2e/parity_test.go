package e2e

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// supabaseJS is pinned so every run resolves the same package.
const supabaseJS = "npm:@supabase/supabase-js@2.119.1"

// supabaseEnvFunction is written the way Supabase's docs write it: a client
// from SUPABASE_URL and the anon key, made per request.
const supabaseEnvFunction = `import { createClient } from "` + supabaseJS + `";

Deno.serve((_req) => {
  const supabase = createClient(
    Deno.env.get("SUPABASE_URL") ?? "",
    Deno.env.get("SUPABASE_ANON_KEY") ?? "",
  );
  return Response.json({
    client: typeof supabase.from,
    url: Deno.env.get("SUPABASE_URL"),
    db: Deno.env.get("SUPABASE_DB_URL"),
    region: Deno.env.get("SB_REGION"),
  });
});
`

func TestParitySupabaseEnvironment(t *testing.T) {
	files := map[string]string{"db-info/index.ts": supabaseEnvFunction}
	t.Run("dev defaults", func(t *testing.T) {
		t.Setenv("SUPABASE_URL", "")
		t.Setenv("SUPABASE_DB_URL", "")
		g := startGateway(t, files, "--dev", "--auth", "none")
		r := g.Get("/functions/v1/db-info")
		if r.Status != 200 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		m := r.JSON(t)
		want := map[string]any{
			"client": "function",
			"url":    "http://127.0.0.1:54321",
			"db":     "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
			"region": "local",
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %v, want %v", k, m[k], v)
			}
		}
	})
	t.Run("production flags", func(t *testing.T) {
		t.Setenv("SUPABASE_URL", "http://from-the-environment.invalid")
		g := startGateway(t, files, "--supabase-url", "https://abc.supabase.co", "--supabase-db-url", "postgresql://u:p@db:5432/postgres", "--region", "eu-west-3", "--env", "SUPABASE_ANON_KEY=anon")
		m := g.Get("/db-info").JSON(t)
		want := map[string]any{"client": "function", "url": "https://abc.supabase.co", "db": "postgresql://u:p@db:5432/postgres", "region": "eu-west-3"}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %v, want %v", k, m[k], v)
			}
		}
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestParityRuntimeVariablesStayWithTheGateway(t *testing.T) {
	port := strconv.Itoa(freePort(t))
	t.Setenv("DENO_SERVE_ADDRESS", "tcp:127.0.0.1:"+port)
	g := startGateway(t, map[string]string{
		".env":           "DENO_SERVE_ADDRESS=tcp:127.0.0.1:" + port + "\nGREETING=hi\n",
		"plain/.env":     "NPM_CONFIG_REGISTRY=http://127.0.0.1:1/\nDENO_AUTO_SERVE=1\n",
		"plain/index.ts": `Deno.serve(() => Response.json({greeting: Deno.env.get("GREETING"), serve: Deno.env.get("DENO_SERVE_ADDRESS") ?? null, registry: Deno.env.get("NPM_CONFIG_REGISTRY") ?? null}));`,
	})
	r := g.Get("/plain")
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if m["greeting"] != "hi" || m["serve"] != nil || m["registry"] != nil {
		t.Fatalf("function environment = %v, want GREETING only", m)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
		c.Close()
		t.Fatalf("the function listens on 127.0.0.1:%s, outside the gateway", port)
	}
	for _, want := range []string{
		"the gateway's environment: variable DENO_SERVE_ADDRESS",
		filepath.Join(g.Dir, ".env") + ":1: variable DENO_SERVE_ADDRESS",
		filepath.Join(g.Dir, "plain", ".env") + ":1: variable NPM_CONFIG_REGISTRY",
		filepath.Join(g.Dir, "plain", ".env") + ":2: variable DENO_AUTO_SERVE",
	} {
		g.WaitLog(func(l logLine) bool { return l.Str("level") == "warn" && strings.Contains(l.Msg(), want) })
	}
}

func TestParityAdminPathsShadowingFunctionsAreReported(t *testing.T) {
	files := map[string]string{
		"health/index.ts":  `Deno.serve((req) => new Response("fn " + new URL(req.url).pathname));`,
		"metrics/index.ts": `Deno.serve((req) => new Response("fn " + new URL(req.url).pathname));`,
	}
	g := startGateway(t, files)
	for _, name := range []string{"health", "metrics"} {
		g.WaitLog(func(l logLine) bool {
			return l.Str("level") == "warn" && strings.Contains(l.Msg(), "function "+name+":") && strings.Contains(l.Msg(), "/functions/v1/"+name)
		})
		if r := g.Get("/functions/v1/" + name); r.Status != 200 || string(r.Body) != "fn /"+name {
			t.Fatalf("/functions/v1/%s: %d %q", name, r.Status, r.Body)
		}
	}
	out, err := exec.Command(binPath(t), "check", "--functions", g.Dir, "--deno", denoPath(t)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "warning: function health:") {
		t.Fatalf("check does not warn about /health: %v\n%s", err, out)
	}
}

// sharedCORS is the `_shared/cors.ts` of Supabase's docs.
const sharedCORS = `export const corsHeaders = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type, traceparent, tracestate, baggage, x-retry-count",
};
`

// corsFunction answers its own preflight, as Supabase's examples do.
const corsFunction = `import { corsHeaders } from "../_shared/cors.ts";

Deno.serve(async (req) => {
  if (req.method === "OPTIONS") {
    return new Response("ok", { headers: { ...corsHeaders, "x-answered-by": "function" } });
  }
  return new Response(JSON.stringify({ ok: true }), {
    headers: { ...corsHeaders, "Content-Type": "application/json" },
  });
});
`

func TestParityCORSPreflights(t *testing.T) {
	files := map[string]string{"_shared/cors.ts": sharedCORS, "browser/index.ts": corsFunction}
	// What a browser sends before a supabase-js functions.invoke.
	preflight := map[string]string{
		"Origin":                         "http://localhost:5173",
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "authorization,x-client-info,apikey,content-type,traceparent,tracestate,baggage,x-retry-count,x-my-header",
	}
	t.Run("dev: the function answers its own preflight", func(t *testing.T) {
		g := startGateway(t, files, "--dev", "--auth", "jwt")
		r := g.Do("OPTIONS", "/functions/v1/browser", nil, preflight)
		if r.Status != 200 || r.Header.Get("X-Answered-By") != "function" || string(r.Body) != "ok" {
			t.Fatalf("preflight: %d %v %q, want the function's own answer", r.Status, r.Header, r.Body)
		}
		if got := r.Header.Get("Access-Control-Allow-Headers"); !strings.Contains(got, "traceparent") {
			t.Fatalf("Access-Control-Allow-Headers = %q", got)
		}
	})
	t.Run("--cors-origins: the gateway allows what is asked", func(t *testing.T) {
		g := startGateway(t, files, "--cors-origins", "http://localhost:5173")
		r := g.Do("OPTIONS", "/functions/v1/browser", nil, preflight)
		if r.Status != 204 || r.Header.Get("Access-Control-Allow-Headers") != preflight["Access-Control-Request-Headers"] ||
			r.Header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" {
			t.Fatalf("preflight: %d %v", r.Status, r.Header)
		}
		r = g.Do("OPTIONS", "/browser", nil, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
		expectError(t, r, 403, "CORS_ORIGIN_NOT_ALLOWED")
	})
	t.Run("--cors-allow-headers: exactly those", func(t *testing.T) {
		g := startGateway(t, files, "--cors-origins", "*", "--cors-allow-headers", "authorization,content-type")
		r := g.Do("OPTIONS", "/browser", nil, preflight)
		if r.Status != 204 || r.Header.Get("Access-Control-Allow-Headers") != "authorization, content-type" {
			t.Fatalf("preflight: %d %v", r.Status, r.Header)
		}
	})
}

func TestParityUncaughtErrorIsPlain500(t *testing.T) {
	g := startGateway(t, map[string]string{
		"throws/index.ts": `Deno.serve(async (req) => {
  const { name } = await req.json(); // a GET has no body: throws
  return new Response("hello " + name);
});`,
	})
	r := g.Get("/throws")
	if r.Status != 500 || string(r.Body) != "Internal Server Error" || r.Header.Get("X-Edgeway-Error") != "" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("uncaught error: %d %v %q, want Deno's plain 500", r.Status, r.Header, r.Body)
	}
	g.WaitLog(func(l logLine) bool { return strings.Contains(l.Msg(), "uncaught error in function handler") })
	// The worker survives and keeps serving.
	if r := g.Do("POST", "/throws", strings.NewReader(`{"name":"Ada"}`), nil); r.Status != 200 || string(r.Body) != "hello Ada" {
		t.Fatalf("after the error: %d %q", r.Status, r.Body)
	}
}

func TestParityConfigTomlAndFolders(t *testing.T) {
	t.Setenv("PARITY_OPENAI", "sk-from-the-environment")
	files := map[string]string{
		"../config.toml": `[functions.reader]
verify_jwt = false
static_files = ["./static/*.html"]

[functions.raeder]
verify_jwt = false

[edge_runtime]
policy = "per_worker"
mystery = true

[edge_runtime.secrets]
OPENAI_API_KEY = "env(PARITY_OPENAI)"
PLAIN = "literal"
MISSING = "env(PARITY_NOT_SET_ANYWHERE)"
`,
		"../static/page.html": "<h1>static</h1>",
		"reader/index.ts": `Deno.serve(async () => {
  const page = await Deno.readTextFile(new URL("../../static/page.html", import.meta.url));
  return Response.json({ page, openai: Deno.env.get("OPENAI_API_KEY"), plain: Deno.env.get("PLAIN"), missing: Deno.env.get("MISSING") ?? null });
});`,
		"no-index/main.ts": `Deno.serve(() => new Response("never"));`,
		"1st/index.ts":     `Deno.serve(() => new Response("never"));`,
	}
	g := startGateway(t, files)
	r := g.Get("/reader")
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	if m["page"] != "<h1>static</h1>" || m["openai"] != "sk-from-the-environment" || m["plain"] != "literal" || m["missing"] != nil {
		t.Fatalf("function saw %v", m)
	}
	toml := filepath.Join(filepath.Dir(g.Dir), "config.toml")
	wants := []string{
		toml + ": section [functions.raeder] names no function",
		toml + ": [edge_runtime] mystery is not applied by edgeway: unknown key",
		toml + ": [edge_runtime] policy is not applied by edgeway",
		toml + ": field \"edge_runtime.secrets.MISSING\": PARITY_NOT_SET_ANYWHERE is not set",
		g.Dir + ": folder no-index is not served: no index file",
		g.Dir + ": folder 1st is not served: the name must match",
	}
	for _, want := range wants {
		g.WaitLog(func(l logLine) bool { return l.Str("level") == "warn" && strings.Contains(l.Msg(), want) })
	}
	out, err := exec.Command(binPath(t), "check", "--functions", g.Dir, "--deno", denoPath(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, want := range append(wants, "reader: static files readable: "+filepath.Join(filepath.Dir(g.Dir), "static", "page.html")) {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

func TestParityPackageJSONDependencies(t *testing.T) {
	g := startGateway(t, map[string]string{
		"hello-hono/package.json": `{
  "name": "hello-hono",
  "type": "module",
  "dependencies": { "hono": "4.13.23" }
}`,
		"hello-hono/index.ts": `import { Hono } from "hono";
import { cors } from "hono/cors";

const app = new Hono().basePath("/hello-hono");
app.use("*", cors());
app.get("/", (c) => c.text("Hello from Hono"));

Deno.serve(app.fetch);
`,
	})
	r := g.Get("/functions/v1/hello-hono")
	if r.Status != 200 || string(r.Body) != "Hello from Hono" {
		t.Fatalf("hono from package.json: %d %q", r.Status, r.Body)
	}
	out, err := exec.Command(binPath(t), "check", "--functions", g.Dir, "--deno", denoPath(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
}

func TestParityCacheWarmsDependenciesBeforeTraffic(t *testing.T) {
	t.Setenv("DENO_DIR", t.TempDir()) // an empty cache, for edgeway and its workers
	root := t.TempDir()
	dir := filepath.Join(root, "functions")
	writeTree(t, dir, map[string]string{
		"numbers/package.json": `{"dependencies": {"is-number": "7.0.0"}}`,
		"numbers/index.ts": `import isNumber from "is-number";
Deno.serve(() => new Response(String(isNumber(42))));`,
		"plain/index.ts": `Deno.serve(() => new Response("plain"));`,
	})
	// Cold and --cached-only: the dependency is not there, the boot fails.
	g := serveDir(t, dir, "--deno-flag=--cached-only")
	expectError(t, g.Get("/numbers"), 503, "BOOT_ERROR")
	g.Signal(syscall.SIGTERM)
	g.WaitExit()

	out, err := exec.Command(binPath(t), "cache", "--functions", dir, "--deno", denoPath(t)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "numbers\tcached") || !strings.Contains(string(out), "2 functions cached") {
		t.Fatalf("edgeway cache: %v\n%s", err, out)
	}
	g = serveDir(t, dir, "--deno-flag=--cached-only")
	if r := g.Get("/numbers"); r.Status != 200 || string(r.Body) != "true" {
		t.Fatalf("after edgeway cache: %d %q", r.Status, r.Body)
	}

	writeTree(t, dir, map[string]string{"broken/index.ts": `import x from "npm:this-package-does-not-exist-edgeway-parity@1.0.0"; Deno.serve(() => new Response(x));`})
	out, err = exec.Command(binPath(t), "cache", "--functions", dir, "--deno", denoPath(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "broken\tFAILED") {
		t.Fatalf("edgeway cache passed a function whose dependency does not exist: %v\n%s", err, out)
	}
}
