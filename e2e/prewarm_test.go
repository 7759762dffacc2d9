package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The prewarm pool (issue 18): cold starts served by pre-booted Deno
// processes keep every isolation a fresh worker has. Functions of the
// default profile run with a private /tmp, which hides folders under /tmp
// from a pre-booted worker, so these tests put their functions folder
// outside /tmp (the package folder, or /var/tmp or the home folder when the
// checkout itself lies under /tmp, as a clean clone may).

// mkdirOutsideTmp makes a folder, removed at the end of the test, that is
// not under /tmp: in the package folder, else /var/tmp, else the home
// folder. None of them: the test fails (it would prove nothing under /tmp).
func mkdirOutsideTmp(t *testing.T) string {
	t.Helper()
	var bases []string
	if cwd, err := os.Getwd(); err == nil {
		bases = append(bases, cwd)
	}
	bases = append(bases, "/var/tmp")
	if home, err := os.UserHomeDir(); err == nil {
		bases = append(bases, home)
	}
	for _, base := range bases {
		real, err := filepath.EvalSymlinks(base)
		if err != nil || real == "/tmp" || strings.HasPrefix(real, "/tmp/") {
			continue
		}
		root, err := os.MkdirTemp(real, ".edgeway-prewarm-")
		if err != nil {
			continue
		}
		t.Cleanup(func() { os.RemoveAll(root) })
		return root
	}
	t.Fatalf("no writable folder outside /tmp among %v", bases)
	return ""
}

// startGatewayOutsideTmp is startGateway with the functions folder outside
// /tmp; links are symbolic links to make (path in the folder -> target).
func startGatewayOutsideTmp(t *testing.T, files map[string]string, links map[string]string, args ...string) *Gateway {
	t.Helper()
	root := mkdirOutsideTmp(t)
	dir := filepath.Join(root, "functions")
	writeTree(t, dir, files)
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	g := launch(t, dir, args...)
	if err := g.waitListening(); err != nil {
		t.Fatalf("gateway did not start: %v\n%s", err, g.logs.text())
	}
	return g
}

func isPooledBoot(l logLine) bool { return l.Msg() == "pre-booted worker waiting" }

// pooledStart and freshStart match the debug lines a cold start of fn logs.
func pooledStart(fn string) func(logLine) bool {
	return func(l logLine) bool {
		return l.Msg() == "cold start takes a pre-booted worker" && l.Str("function") == fn
	}
}

func freshStart(fn string) func(logLine) bool {
	return func(l logLine) bool {
		return l.Msg() == "cold start spawns a fresh worker, not a pre-booted one" && l.Str("function") == fn
	}
}

// prewarmProbeFn reports what it may read, write, connect to and see.
const prewarmProbeFn = `import { shared } from "../_shared/mod.ts";
Deno.serve(async (req) => {
  const q = new URL(req.url).searchParams;
  const out: Record<string, unknown> = { shared };
  const attempt = async (name: string, f: () => Promise<unknown>) => {
    try { await f(); out[name] = "ok"; } catch (e) { out[name] = (e as Error).name; }
  };
  await attempt("readOwn", () => Deno.readTextFile(new URL("./own.txt", import.meta.url)));
  await attempt("readOwnRelative", () => Deno.readTextFile("./own.txt"));
  await attempt("readSharedRelative", () => Deno.readTextFile("../_shared/data.txt"));
  await attempt("readShared", () => Deno.readTextFile(new URL("../_shared/data.txt", import.meta.url)));
  await attempt("readSiblingRelative", () => Deno.readTextFile(new URL("../other/secret.txt", import.meta.url)));
  await attempt("readSiblingReal", () => Deno.readTextFile(q.get("sibling")!));
  await attempt("listRoot", async () => { for await (const _ of Deno.readDir(q.get("root")!)) {} });
  await attempt("writeOwn", () => Deno.writeTextFile(new URL("./written.txt", import.meta.url), "x"));
  await attempt("writeShared", () => Deno.writeTextFile(new URL("../_shared/written.txt", import.meta.url), "x"));
  await attempt("writeRoot", () => Deno.writeTextFile(q.get("root") + "/written.txt", "x"));
  await attempt("writeRunDir", () => Deno.writeTextFile(q.get("rundir") + "/written.txt", "x"));
  const socks: string[] = [];
  for (const path of q.getAll("sock")) {
    try { (await Deno.connect({ transport: "unix", path })).close(); socks.push("connected"); }
    catch (e) { socks.push((e as Error).name); }
  }
  out.sockets = socks;
  out.env = Deno.env.toObject();
  out.self = import.meta.url;
  return Response.json(out);
});
`

// TestPrewarmIsolation runs the checks under each --function-tmp mode: the
// slot lies in the worker's private /tmp (private) or in the runtime
// folder (shared, off).
func TestPrewarmIsolation(t *testing.T) {
	t.Run("private", func(t *testing.T) { checkPrewarmIsolation(t, "--function-tmp=private") })
	t.Run("shared", func(t *testing.T) {
		// Shared mode needs the runtime folder outside /tmp.
		outside, err := os.MkdirTemp("/var/tmp", "edgeway-e2e-")
		if err != nil {
			t.Skipf("no /var/tmp: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(outside) })
		t.Setenv("TMPDIR", outside)
		checkPrewarmIsolation(t, "--function-tmp=shared")
	})
	t.Run("off", func(t *testing.T) { checkPrewarmIsolation(t, "--function-tmp=off") })
}

func checkPrewarmIsolation(t *testing.T, tmpMode string) {
	g := startGatewayOutsideTmp(t, map[string]string{
		"_shared/mod.ts":       `export const shared = "shared-ok";`,
		"_shared/data.txt":     "shared data",
		"probe/index.ts":       prewarmProbeFn,
		"probe/own.txt":        "own",
		"probe/.env":           "PROBE_SECRET=p\n",
		"other/index.ts":       `Deno.serve(() => new Response("other"));`,
		"other/secret.txt":     "other's secret",
		"other/.env":           "OTHER_SECRET=o\n",
		"linked/index.ts":      `Deno.serve(async () => new Response(await Deno.readTextFile(new URL("./out/secret.txt", import.meta.url))));`,
		"guarded/index.ts":     guardedMain,
		"mem/function.json":    `{"memoryLimitMb": 64}`,
		"mem/index.ts":         memFn,
		"strict/function.json": `{"permissions": "strict"}`,
		"strict/index.ts":      `Deno.serve(() => { let env = "none"; try { env = JSON.stringify(Deno.env.toObject()); } catch (e) { env = (e as Error).name; } return new Response(env); });`,
	}, map[string]string{"linked/out": "../other"}, "--prewarm-pool", "1", "--prewarm-classes", "3", "--allow-outside-symlinks", tmpMode)
	root := g.Dir
	boots := 3 // one per class: default, memoryLimitMb 64, strict
	g.WaitLogCount(isPooledBoot, boots)

	if r := g.Get("/other"); r.Status != 200 || string(r.Body) != "other" {
		t.Fatalf("other: %d %s", r.Status, r.Body)
	}
	g.WaitLog(pooledStart("other"))
	boots++
	g.WaitLogCount(isPooledBoot, boots)

	// Every worker socket there is now (other's): the probe may reach none.
	var socks []string
	filepath.Walk(g.RunDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode()&os.ModeSocket != 0 {
			socks = append(socks, p)
		}
		return nil
	})
	if len(socks) == 0 {
		t.Fatalf("found no worker socket under %s", g.RunDir)
	}
	q := url.Values{"sibling": {filepath.Join(root, "other", "secret.txt")}, "root": {root}, "rundir": {g.RunDir}, "sock": socks}
	r := g.Get("/probe?" + q.Encode())
	if r.Status != 200 {
		t.Fatalf("probe: %d %s", r.Status, r.Body)
	}
	g.WaitLog(pooledStart("probe"))
	boots++
	m := r.JSON(t)
	for key, want := range map[string]string{
		"shared": "shared-ok", "readOwn": "ok", "readShared": "ok", "readOwnRelative": "ok", "readSharedRelative": "ok",
		"readSiblingReal": "NotCapable", "listRoot": "NotCapable",
		"writeOwn": "NotCapable", "writeShared": "NotCapable", "writeRoot": "NotCapable",
	} {
		if m[key] != want {
			t.Errorf("%s = %v, want %s", key, m[key], want)
		}
	}
	// With a private /tmp the runtime folder's path names the worker's own
	// /tmp: nothing may land in the gateway's.
	for _, p := range []string{filepath.Join(g.RunDir, "written.txt"), filepath.Join(root, "probe", "written.txt"), filepath.Join(root, "_shared", "written.txt")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the probe wrote %s", p)
		}
	}
	if m["readSiblingRelative"] == "ok" {
		t.Errorf("the probe read ../other/secret.txt through its slot")
	}
	for i, s := range m["sockets"].([]any) {
		if s == "connected" {
			t.Errorf("the probe connected to another worker's socket %s", socks[i])
		}
	}
	env := m["env"].(map[string]any)
	if env["PROBE_SECRET"] != "p" {
		t.Errorf("PROBE_SECRET = %v, want its own variable", env["PROBE_SECRET"])
	}
	for k := range env {
		if k == "OTHER_SECRET" || strings.HasPrefix(k, "EDGEWAY_") || k == "DENO_SERVE_ADDRESS" || k == "DENO_AUTO_SERVE" {
			t.Errorf("the probe sees %s", k)
		}
	}
	if self, _ := m["self"].(string); strings.Contains(self, root) {
		t.Errorf("the entry was loaded from its real folder %s, not through its slot", self)
	}

	// A folder with a symbolic link leading out of it boots fresh (it reads
	// through the link as a fresh worker does).
	if r := g.Get("/linked"); r.Status != 200 || string(r.Body) != "other's secret" {
		t.Errorf("linked: %d %s", r.Status, r.Body)
	}
	l := g.WaitLog(freshStart("linked"))
	if !strings.Contains(l.Str("why"), "leads out of its folder") {
		t.Errorf("linked boots fresh because %q", l.Str("why"))
	}
	// So does a function that reads import.meta.main, and it is the main
	// module as always.
	checkMainModule(t, g, "guarded")
	if l := g.WaitLog(freshStart("guarded")); !strings.Contains(l.Str("why"), "import.meta.main") {
		t.Errorf("guarded boots fresh because %q", l.Str("why"))
	}

	// A profile without env access sees no variable, pre-booted too.
	g.WaitLogCount(isPooledBoot, boots)
	if r := g.Get("/strict"); r.Status != 200 || string(r.Body) != "NotCapable" {
		t.Errorf("strict: %d %s", r.Status, r.Body)
	}
	g.WaitLog(pooledStart("strict"))
	boots++

	// memoryLimitMb is the V8 heap limit of its class's processes.
	g.WaitLogCount(isPooledBoot, boots)
	r = g.Get("/mem")
	if r.Status != 200 {
		t.Fatalf("mem: %d %s", r.Status, r.Body)
	}
	g.WaitLog(pooledStart("mem"))
	if limit, _ := r.JSON(t)["heapLimit"].(float64); limit <= 0 || limit > 200<<20 {
		t.Errorf("heap limit %v bytes, want about 64 MiB", limit)
	}
	expectError(t, g.Get("/mem?heap=1"), 546, "WORKER_LIMIT")
	g.WaitLog(func(l logLine) bool {
		return l.Str("function") == "mem" && l.Msg() == "worker died" && l.Str("reason") == "memory"
	})
}

const memFn = `import { getHeapStatistics } from "node:v8";
const held: unknown[] = [];
Deno.serve((req) => {
  if (new URL(req.url).searchParams.has("heap")) {
    for (;;) held.push(new Array(100000).fill({ x: 1 }));
  }
  return Response.json({ heapLimit: getHeapStatistics().heap_size_limit });
});
`

// TestPrewarmServes: every way a function serves works from a pre-booted
// worker as from a fresh one: Deno.serve's three forms, `export default
// { fetch }` (Deno's auto-serve) and a node:http server.
func TestPrewarmServes(t *testing.T) {
	fns := map[string]string{
		"plain/index.ts":   `Deno.serve((req) => new Response("plain " + new URL(req.url).pathname));`,
		"options/index.ts": `Deno.serve({ port: 8000 }, (req) => new Response("options " + new URL(req.url).pathname));`,
		"object/index.ts":  `Deno.serve({ handler: (req) => new Response("object " + new URL(req.url).pathname) });`,
		"auto/index.ts":    `export default { fetch(req: Request) { return new Response("auto " + new URL(req.url).pathname); } };`,
		"node/index.ts": `import { createServer } from "node:http";
const server = createServer((req, res) => res.end("node " + req.url));
server.listen(3000, () => console.log("listening on", (server.address() as { port: number }).port));
`,
	}
	// Two classes: the node:http one loads the bootstrap's patch at boot.
	g := startGatewayOutsideTmp(t, fns, nil, "--prewarm-pool", "1", "--prewarm-classes", "2", "--internal-key", internalKey)
	boots := 2
	for _, name := range []string{"plain", "options", "object", "auto", "node"} {
		g.WaitLogCount(isPooledBoot, boots)
		r := g.Get("/" + name + "/x")
		if want := name + " /x"; r.Status != 200 || string(r.Body) != want {
			t.Errorf("%s: %d %q, want %q", name, r.Status, r.Body, want)
		}
		g.WaitLog(pooledStart(name))
		boots++
	}
	// The node:http server's address() answers with its port, as in a
	// fresh worker.
	g.WaitLog(func(l logLine) bool {
		return l.Str("function") == "node" && strings.Contains(l.Msg(), "listening on 3000")
	})

	// The access log says which request waited for which kind of boot:
	// the first one each worker answered, and only that one.
	if r := g.Get("/plain/again"); r.Status != 200 {
		t.Fatalf("plain again: %d", r.Status)
	}
	first := g.WaitLog(func(l logLine) bool {
		return l.Msg() == "request" && l.Str("function") == "plain" && l.Str("path") == "/plain/x"
	})
	if first.Str("cold_start") != "pool" || first["cold_start_ms"] == nil {
		t.Errorf("first request's log line: %v", first)
	}
	again := g.WaitLog(func(l logLine) bool { return l.Msg() == "request" && l.Str("path") == "/plain/again" })
	if _, ok := again["cold_start"]; ok {
		t.Errorf("a warm request's log line names a cold start: %v", again)
	}

	// /health and the metrics count the pool's hits.
	r := g.Do("GET", "/health", nil, map[string]string{"Authorization": "Bearer " + internalKey})
	pw, _ := r.JSON(t)["prewarm"].(map[string]any)
	if pw == nil || pw["hits"].(float64) < 5 || pw["size"].(float64) != 1 || pw["classes"].(float64) != 2 || pw["refill_seconds"].(float64) <= 0 {
		t.Errorf("/health prewarm = %v", pw)
	}
	fams := scrapeFamilies(t, g)
	if f := fams["edgeway_prewarm_hits_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() < 5 {
		t.Errorf("edgeway_prewarm_hits_total = %v", f)
	}
	found := false
	for _, m := range fams["edgeway_cold_start_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "source" && l.GetValue() == "pool" && m.GetHistogram().GetSampleCount() > 0 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no edgeway_cold_start_duration_seconds{source=\"pool\"} sample")
	}
}

// TestPrewarmBurst: 50 cold starts of different functions at once all
// answer; the pool serves what it holds and the rest spawn fresh; once
// the workers have gone idle and stopped, nothing is left behind
// (processes, sockets, private folders, the gateway's fds), and at
// shutdown the pooled processes go too.
func TestPrewarmBurst(t *testing.T) {
	const n, pool = 50, 3
	fns := map[string]string{}
	for i := 0; i < n; i++ {
		fns[fmt.Sprintf("f%02d/index.ts", i)] = fmt.Sprintf(`Deno.serve(() => new Response("f%02d"));`, i)
	}
	g := startGatewayOutsideTmp(t, fns, nil, "--prewarm-pool", strconv.Itoa(pool), "--prewarm-classes", "1",
		"--max-workers-total", "100", "--idle-timeout", "1s")
	g.WaitLogCount(isPooledBoot, pool)
	gatewayFDs := func() int {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", g.cmd.Process.Pid))
		return len(ents)
	}
	baseline := gatewayFDs()

	burst := &http.Client{Timeout: 2 * eventTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := fmt.Sprintf("f%02d", i)
			resp, err := burst.Get(g.URL + "/" + name)
			if err != nil {
				errs <- name + ": " + err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != name {
				errs <- fmt.Sprintf("%s: %d %s", name, resp.StatusCode, body)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	pooled := g.logs.count(func(l logLine) bool { return l.Msg() == "cold start takes a pre-booted worker" })
	fresh := g.logs.count(func(l logLine) bool { return l.Msg() == "cold start spawns a fresh worker, not a pre-booted one" })
	t.Logf("%d cold starts from the pool, %d fresh", pooled, fresh)
	if pooled < pool || pooled+fresh != n {
		t.Errorf("%d pooled + %d fresh cold starts, want at least %d pooled and %d in all", pooled, fresh, pool, n)
	}

	// Every worker goes idle and stops; the pool refills to its size.
	g.WaitLogCount(func(l logLine) bool { return l.Msg() == "worker stopped" && l.Str("reason") == "idle" }, n)
	g.WaitLogCount(isPooledBoot, pool+pooled)
	var left []int
	deadline := time.Now().Add(eventTimeout)
	for {
		left = g.WorkerPIDs()
		if len(left) == pool || time.Now().After(deadline) {
			break
		}
		sleepPoll() // /proc has no event for another process's exit
	}
	if len(left) != pool {
		t.Errorf("%d Deno processes after every worker stopped, want the %d pooled: %v", len(left), pool, left)
	}
	var socks, boxes []string
	filepath.Walk(g.RunDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode()&os.ModeSocket != 0 {
			socks = append(socks, p)
		}
		if err == nil && info.IsDir() && strings.HasPrefix(info.Name(), "tmp-w") {
			boxes = append(boxes, p)
		}
		return nil
	})
	if len(socks) != 0 || len(boxes) > pool {
		t.Errorf("left behind: sockets %v, private folders %v", socks, boxes)
	}
	if fds := gatewayFDs(); fds > baseline+2 {
		t.Errorf("the gateway holds %d fds, %d before the burst", fds, baseline)
	}
	g.Signal(syscall.SIGTERM)
	if code := g.WaitExit(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	waitNoProcesses(t, g.RunDir)
	if _, err := os.Stat(g.RunDir); err == nil {
		t.Errorf("runtime folder %s left behind", g.RunDir)
	}
}

// TestPrewarmReloadDropsOldClasses: a reload that changes a function's
// class kills the pre-booted processes of the class no longer kept and
// boots the new one's; a function that moves to a class of its own is
// served from it.
func TestPrewarmReloadDropsOldClasses(t *testing.T) {
	g := startGatewayOutsideTmp(t, map[string]string{
		"a/index.ts":      `Deno.serve(() => new Response("a"));`,
		"a/function.json": `{"permissions": "strict"}`,
	}, nil, "--prewarm-pool", "1", "--prewarm-classes", "1")
	old := g.WaitLog(isPooledBoot).Int("pid")
	if err := os.WriteFile(filepath.Join(g.Dir, "a", "function.json"), []byte(`{"permissions": "none"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	g.Signal(syscall.SIGHUP)
	g.WaitLogCount(isPooledBoot, 2)
	deadline := time.Now().Add(eventTimeout)
	for syscall.Kill(old, 0) == nil {
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", old)); err == nil && strings.Contains(string(stat), ") Z ") {
			break // exited, not yet reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pre-booted process %d of the dropped class still runs", old)
		}
		sleepPoll() // /proc has no event for another process's exit
	}
	if r := g.Get("/a"); r.Status != 200 || string(r.Body) != "a" {
		t.Fatalf("a: %d %s", r.Status, r.Body)
	}
	g.WaitLog(pooledStart("a"))
}
