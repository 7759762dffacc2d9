package e2e

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// What functions of the default permission profile may touch, as on
// Supabase: /tmp (private per worker where the OS allows it), their TMPDIR,
// Deno's npm cache and a few sys calls; and what they still may not.

// probeTS runs named checks and answers {name: "ok" | value | error name}.
const probeTS = `export async function probe(checks: Record<string, () => unknown>): Promise<Response> {
  const out: Record<string, string> = {};
  for (const [name, check] of Object.entries(checks)) {
    try {
      const v = await check();
      out[name] = v === undefined ? "ok" : String(v);
    } catch (e) {
      out[name] = (e as Error).name;
    }
  }
  return Response.json(out);
}
`

// expectProbe checks a probe's answers; a wanted value "!x" means anything
// but x (and an answer was given).
func expectProbe(t *testing.T, g *Gateway, path string, want map[string]string) {
	t.Helper()
	r := g.Get(path)
	if r.Status != 200 {
		t.Fatalf("GET %s: %d %q", path, r.Status, r.Body)
	}
	t.Logf("GET %s: %s", path, r.Body)
	var got map[string]string
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("GET %s: %v: %q", path, err, r.Body)
	}
	for k, v := range want {
		if not, ok := strings.CutPrefix(v, "!"); ok {
			if got[k] == not || got[k] == "" {
				t.Errorf("GET %s: %s = %q, want anything else (all: %v)", path, k, got[k], got)
			}
			continue
		}
		if got[k] != v {
			t.Errorf("GET %s: %s = %q, want %q (all: %v)", path, k, got[k], v, got)
		}
	}
}

// tmpMode is the /tmp the gateway resolved (the log says which).
func tmpMode(g *Gateway) string {
	return g.WaitLog(func(l logLine) bool { return l.Str("tmp") != "" }).Str("tmp")
}

var tmpFunctions = map[string]string{
	"_shared/probe.ts": probeTS,
	// Real functions write literal /tmp paths, at top level too.
	"tmp/index.ts": `import { probe } from "../_shared/probe.ts";
const f = await Deno.create("/tmp/x"); f.close();
Deno.serve(() => probe({
  topLevel: () => Deno.statSync("/tmp/x").isFile,
  write: () => Deno.writeTextFile("/tmp/from-tmp", "tmp"),
  readBack: () => Deno.readTextFile("/tmp/from-tmp"),
  tmpdirSet: () => (Deno.env.get("TMPDIR") ?? "") !== "",
  makeTempFile: async () => (await Deno.makeTempFile({ prefix: "mk" })).startsWith(Deno.env.get("TMPDIR")! + "/"),
  makeTempDir: async () => { const d = await Deno.makeTempDir(); await Deno.writeTextFile(d + "/f", "x"); return d.startsWith(Deno.env.get("TMPDIR")!); },
}));
`,
	"other/index.ts": `import { probe } from "../_shared/probe.ts";
Deno.serve(() => probe({ seesTmpFile: () => Deno.readTextFile("/tmp/from-tmp") }));
`,
	// What the /tmp grant must not open: edgeway's runtime folder (every
	// worker's socket, the bootstrap), the project folder (config.toml,
	// .env, other functions' code), the function's own code.
	"guard/index.ts": `import { probe } from "../_shared/probe.ts";
Deno.serve((req) => {
  const q = new URL(req.url).searchParams;
  const run = q.get("run")!, fns = q.get("fns")!;
  return probe({
    writeBootstrap: () => Deno.writeTextFile(run + "/bootstrap.js", "x"),
    removeBootstrap: () => Deno.remove(run + "/bootstrap.js"),
    connectOtherWorker: async () => { (await Deno.connect({ transport: "unix", path: run + "/w1.sock" })).close(); },
    readConfigToml: () => Deno.readTextFile(fns + "/../config.toml"),
    readDotEnv: () => Deno.readTextFile(fns + "/.env"),
    readOtherFunction: () => Deno.readTextFile(fns + "/tmp/index.ts"),
    writeOwnCode: () => Deno.writeTextFile(fns + "/guard/index.ts", "x"),
    readOwnCode: () => Deno.readTextFile(fns + "/guard/index.ts").then((s) => s.length > 0),
    readShared: () => Deno.readTextFile(fns + "/_shared/probe.ts").then((s) => s.length > 0),
    writeShared: () => Deno.writeTextFile(fns + "/_shared/probe.ts", "x"),
    symlink: () => Deno.symlink("/etc", "/tmp/etc-link"),
  });
});
`,
	".env":           "SECRET_THING=s3cret\n",
	"../config.toml": "[functions.guard]\nverify_jwt = false\n",
}

func TestFunctionTmpPrivatePerWorker(t *testing.T) {
	g := startGateway(t, tmpFunctions)
	mode := tmpMode(g)
	if mode != "private" {
		t.Skipf("this system gives no private /tmp (resolved %q)", mode)
	}
	expectProbe(t, g, "/tmp", map[string]string{
		"topLevel": "true", "write": "ok", "readBack": "tmp", "tmpdirSet": "true", "makeTempFile": "true", "makeTempDir": "true",
	})
	// Another function (another worker) has its own /tmp.
	expectProbe(t, g, "/other", map[string]string{"seesTmpFile": "NotFound"})
	if _, err := os.Stat("/tmp/from-tmp"); err == nil {
		t.Errorf("the worker's /tmp/from-tmp landed in the host's /tmp")
	}
	guardChecks(t, g)
	// The worker's folder goes with the gateway's runtime folder.
	g.Signal(os.Interrupt)
	g.WaitExit()
	if _, err := os.Stat(g.RunDir); !os.IsNotExist(err) {
		t.Errorf("runtime folder (with the workers' /tmp) left behind: %v", err)
	}
}

func TestFunctionTmpShared(t *testing.T) {
	// Shared mode needs everything of edgeway's outside /tmp: the runtime
	// folder (TMPDIR) and the functions folder (the test's temp dirs).
	outside, err := os.MkdirTemp("/var/tmp", "edgeway-e2e-")
	if err != nil {
		t.Skipf("no /var/tmp: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(outside) })
	t.Setenv("TMPDIR", outside)
	// Fresh workers: a pool-started one reads its own code through its slot
	// only, not by its real path (readOwnCode); TestPrewarmIsolation checks
	// pool-started workers in this mode.
	g := startGateway(t, tmpFunctions, "--function-tmp=shared", "--prewarm-pool", "0")
	if mode := tmpMode(g); mode != "shared" {
		t.Fatalf("tmp = %q, want shared", mode)
	}
	t.Cleanup(func() { os.Remove("/tmp/x"); os.Remove("/tmp/from-tmp") })
	expectProbe(t, g, "/tmp", map[string]string{
		"topLevel": "true", "write": "ok", "readBack": "tmp", "tmpdirSet": "true", "makeTempFile": "true", "makeTempDir": "true",
	})
	// The documented trade-off: functions see each other's files.
	expectProbe(t, g, "/other", map[string]string{"seesTmpFile": "tmp"})
	guardChecks(t, g)
}

// Shared mode is refused while anything of edgeway's lies under /tmp.
func TestFunctionTmpSharedRefusedOverGatewayFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "functions")
	writeTree(t, dir, map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`})
	g := launch(t, dir, "--function-tmp=shared")
	if code := g.WaitExit(); code == 0 {
		t.Fatal("started with its runtime folder under a shared /tmp")
	}
	if !strings.Contains(g.logs.text(), "lies under /tmp") {
		t.Fatalf("stderr does not say why: %s", g.logs.text())
	}
}

func TestFunctionTmpOff(t *testing.T) {
	g := startGateway(t, map[string]string{
		"_shared/probe.ts": probeTS,
		"off/index.ts": `import { probe } from "../_shared/probe.ts";
Deno.serve(() => probe({
  write: () => Deno.writeTextFile("/tmp/edgeway-off-test", "x"),
  makeTempFile: async () => (await Deno.makeTempFile()).startsWith(Deno.env.get("TMPDIR")! + "/"),
}));
`,
	}, "--function-tmp=off")
	expectProbe(t, g, "/off", map[string]string{"write": "NotCapable", "makeTempFile": "true"})
}

// guardChecks runs the guard function against this gateway's paths.
func guardChecks(t *testing.T, g *Gateway) {
	t.Helper()
	q := url.Values{"run": {g.RunDir}, "fns": {g.Dir}}
	expectProbe(t, g, "/guard?"+q.Encode(), map[string]string{
		"writeBootstrap": "!ok", "removeBootstrap": "!ok", "connectOtherWorker": "!ok",
		"readConfigToml": "!ok", "readDotEnv": "!ok", "readOtherFunction": "!ok",
		"writeOwnCode": "!ok", "readOwnCode": "true", "readShared": "true", "writeShared": "!ok",
		"symlink": "NotCapable",
	})
}

// sysTS asks for what npm packages read through node:os at import.
const sysTS = `import os from "node:os";
import { probe } from "../_shared/probe.ts";
Deno.serve(() => probe({
  hostname: () => Deno.hostname().length > 0,
  cpus: () => os.cpus().length > 0,
  totalmem: () => os.totalmem() > 0,
  release: () => os.release().length > 0,
  networkInterfaces: () => { os.networkInterfaces(); },
  homedir: () => { os.homedir(); },
}));
`

func TestFunctionSysInfo(t *testing.T) {
	files := map[string]string{"_shared/probe.ts": probeTS, "sys/index.ts": sysTS}
	t.Run("default", func(t *testing.T) {
		g := startGateway(t, files)
		expectProbe(t, g, "/sys", map[string]string{
			"hostname": "true", "cpus": "true", "totalmem": "true", "release": "true",
			"networkInterfaces": "NotCapable", "homedir": "NotCapable",
		})
	})
	t.Run("narrowed", func(t *testing.T) {
		g := startGateway(t, files, "--function-sys=hostname")
		expectProbe(t, g, "/sys", map[string]string{"hostname": "true", "cpus": "NotCapable", "totalmem": "NotCapable"})
	})
}

// npmCache is where Deno keeps npm packages, as the gateway's workers see it.
func npmCache(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(denoPath(t), "info", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		DenoDir  string `json:"denoDir"`
		NpmCache string `json:"npmCache"`
	}
	if err := json.Unmarshal(out, &info); err != nil || info.NpmCache == "" {
		t.Fatalf("deno info: %v %q", err, out)
	}
	return info.NpmCache
}

// An npm package reading its own files at run time, by path and by file URL.
const npmReadTS = `import isNumber from "npm:is-number@7.0.0";
import { probe } from "../_shared/probe.ts";
Deno.serve((req) => {
  const q = new URL(req.url).searchParams;
  const pkg = q.get("pkg")!, outside = q.get("outside")!;
  return probe({
    imported: () => isNumber(5),
    readFile: async () => JSON.parse(await Deno.readTextFile(pkg)).name,
    fetchFileURL: async () => (await (await fetch("file://" + pkg)).json()).name,
    outsideNpmCache: () => { Deno.readDirSync(outside); },
  });
});
`

func TestFunctionReadsNpmCache(t *testing.T) {
	files := map[string]string{"_shared/probe.ts": probeTS, "npmread/index.ts": npmReadTS}
	cache := npmCache(t)
	q := url.Values{
		"pkg":     {filepath.Join(cache, "registry.npmjs.org", "is-number", "7.0.0", "package.json")},
		"outside": {filepath.Dir(cache)}, // DENO_DIR itself: remote modules, code cache
	}
	t.Run("default", func(t *testing.T) {
		g := startGateway(t, files)
		expectProbe(t, g, "/npmread?"+q.Encode(), map[string]string{
			"imported": "true", "readFile": "is-number", "fetchFileURL": "is-number", "outsideNpmCache": "NotCapable",
		})
	})
	t.Run("off", func(t *testing.T) {
		g := startGateway(t, files, "--function-npm-read=false")
		expectProbe(t, g, "/npmread?"+q.Encode(), map[string]string{"imported": "true", "readFile": "NotCapable", "fetchFileURL": "NotCapable"})
	})
}

// The other profiles say exactly what they grant: none of the above.
func TestStrictProfilesGetNoSandboxGrants(t *testing.T) {
	probe := `import os from "node:os";
import { probe } from "../_shared/probe.ts";
Deno.serve((req) => probe({
  tmp: () => Deno.writeTextFile("/tmp/edgeway-strict-test", "x"),
  hostname: () => Deno.hostname(),
  cpus: () => { os.cpus(); },
  npm: () => Deno.readTextFile(new URL(req.url).searchParams.get("pkg")!),
}));
`
	files := map[string]string{"_shared/probe.ts": probeTS}
	for _, profile := range []string{"strict", "none", "custom"} {
		files[profile+"/index.ts"] = probe
		files[profile+"/function.json"] = `{"permissions": "` + profile + `"}`
	}
	files["listed/index.ts"] = probe
	files["listed/function.json"] = `{"permissions": ["--allow-net", "--allow-env"]}`
	g := startGateway(t, files, "--permission-profile", "custom=--allow-env")
	pkg := url.Values{"pkg": {filepath.Join(npmCache(t), "registry.npmjs.org", "is-number", "7.0.0", "package.json")}}.Encode()
	for _, name := range []string{"strict", "none", "custom", "listed"} {
		expectProbe(t, g, "/"+name+"?"+pkg, map[string]string{"tmp": "NotCapable", "hostname": "NotCapable", "cpus": "NotCapable", "npm": "NotCapable"})
	}
}
