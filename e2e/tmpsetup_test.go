package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// TestFunctionTmpSetup runs the private /tmp checks under each way a worker
// gets its namespace: the spawner's thread (root: no re-execution of
// edgeway) and the re-executed namespace helper. Many private starts later
// the gateway's own mount table is as it was, a worker started plainly from
// the same thread sees the host's /tmp, and SIGKILL takes every worker with
// the gateway.
func TestFunctionTmpSetup(t *testing.T) {
	for _, setup := range []string{"thread", "exec"} {
		t.Run(setup, func(t *testing.T) {
			if setup == "thread" && os.Geteuid() != 0 {
				t.Skip("the thread setup needs root")
			}
			checkTmpSetup(t, setup)
		})
	}
}

func checkTmpSetup(t *testing.T, setup string) {
	marker, err := os.CreateTemp("/tmp", "edgeway-e2e-host-")
	if err != nil {
		t.Fatal(err)
	}
	marker.WriteString("host")
	marker.Close()
	t.Cleanup(func() { os.Remove(marker.Name()) })

	files := map[string]string{}
	for k, v := range tmpFunctions {
		files[k] = v
	}
	// What lies in the host's /tmp or another worker's: never visible.
	// What is bound back (the runtime folder's files, the functions, all
	// under /tmp here): readable, never writable, though Deno's /tmp grant
	// covers them.
	files["peek/index.ts"] = `import { probe } from "../_shared/probe.ts";
// readOnly tells the file system's refusal (a read-only mount) from Deno's.
const readOnly = (p: Promise<unknown>) => p.then(() => "wrote", (e) => /read-only/i.test(e.message) ? "ReadOnly" : e.name);
Deno.serve((req) => {
  const q = new URL(req.url).searchParams;
  return probe({
    hostTmp: () => Deno.readTextFile(q.get("marker")!),
    otherWorkerTmp: () => Deno.readTextFile(q.get("other")!),
    ownCode: () => Deno.readTextFile(q.get("own")!).then((s) => s.length > 0),
    writeOwnCode: () => readOnly(Deno.writeTextFile(q.get("own")!, "x")),
    createInOwnFolder: () => readOnly(Deno.writeTextFile(q.get("own")! + ".new", "x")),
    writeBootstrap: () => readOnly(Deno.writeTextFile(q.get("run")! + "/bootstrap.js", "x")),
    ownTmp: async () => { await Deno.writeTextFile("/tmp/peek", "p"); return Deno.readTextFile("/tmp/peek"); },
  });
});
`
	// A strict profile gets no private /tmp: started plainly from the same
	// thread, after the private starts, it must see the host's /tmp.
	files["host/index.ts"] = `import { probe } from "../_shared/probe.ts";
Deno.serve((req) => probe({ hostTmp: () => Deno.readTextFile(new URL(req.url).searchParams.get("marker")!) }));
`
	const many = 12
	for i := range many {
		files[fmt.Sprintf("f%d/index.ts", i)] = `Deno.serve(async () => { await Deno.writeTextFile("/tmp/mine", "` + strconv.Itoa(i) + `"); return new Response(await Deno.readTextFile("/tmp/mine")); });`
	}
	g := startGateway(t, files, "--function-tmp=private", "--function-tmp-setup="+setup, "--prewarm-pool", "0",
		"--permission-profile", "hostread=--allow-read=/tmp", "--function-permissions", "host=hostread")
	if got := g.WaitLog(func(l logLine) bool { return l.Str("tmp_setup") != "" }).Str("tmp_setup"); got != setup {
		t.Fatalf("tmp_setup %q, want %q", got, setup)
	}
	pid := g.cmd.Process.Pid
	mountinfo := func() string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	before := mountinfo()

	expectProbe(t, g, "/tmp", map[string]string{"write": "ok", "readBack": "tmp", "topLevel": "true"})
	expectProbe(t, g, "/other", map[string]string{"seesTmpFile": "NotFound"})
	guardChecks(t, g)
	for i := range many {
		if r := g.Get(fmt.Sprintf("/f%d", i)); r.Status != 200 || string(r.Body) != strconv.Itoa(i) {
			t.Fatalf("/f%d: %d %q", i, r.Status, r.Body)
		}
	}
	own := filepath.Join(g.Dir, "peek", "index.ts")
	q := url.Values{"marker": {marker.Name()}, "other": {filepath.Join(g.RunDir, "tmp-w1", "from-tmp")}, "own": {own}, "run": {g.RunDir}}
	expectProbe(t, g, "/peek?"+q.Encode(), map[string]string{
		"hostTmp": "NotFound", "otherWorkerTmp": "NotFound", "ownCode": "true",
		"writeOwnCode": "ReadOnly", "createInOwnFolder": "ReadOnly", "writeBootstrap": "ReadOnly", "ownTmp": "p",
	})
	if b, _ := os.ReadFile(own); string(b) == "x" {
		t.Errorf("the worker rewrote its own code through a bound-back path")
	}
	if _, err := os.Stat(filepath.Join(g.RunDir, "tmp-w1", "from-tmp")); err != nil {
		t.Errorf("the first worker's /tmp/from-tmp is not in its own folder: %v", err)
	}
	expectProbe(t, g, "/host?"+url.Values{"marker": {marker.Name()}}.Encode(), map[string]string{"hostTmp": "host"})
	if after := mountinfo(); after != before {
		t.Errorf("the gateway's mount table changed after %d private starts:\nbefore:\n%s\nafter:\n%s", many+4, before, after)
	}
	self, _ := os.Readlink("/proc/self/ns/mnt")
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/ns/mnt", pid))
	for _, task := range tasks {
		if ns, err := os.Readlink(task); err == nil && ns != self {
			t.Errorf("gateway thread %s is in mount namespace %s, not the host's %s", task, ns, self)
		}
	}

	// PR_SET_PDEATHSIG: the workers die with the gateway.
	if n := len(g.WorkerPIDs()); n < many {
		t.Fatalf("%d workers alive, want at least %d", n, many)
	}
	g.Signal(syscall.SIGKILL)
	g.WaitExit()
	waitNoProcesses(t, g.RunDir)
}
