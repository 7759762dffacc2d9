package e2e

import (
	"os"
	"testing"
)

// kill -9 leaves the runtime folder behind; the next start removes it,
// and never the folder of a gateway that is still running.
func TestStaleRuntimeFolderIsRemovedAtStartup(t *testing.T) {
	files := map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`}
	live := startGateway(t, files)
	killed := startGateway(t, files)
	if r := killed.Get("/hello"); r.Status != 200 {
		t.Fatalf("%d %q", r.Status, r.Body)
	}
	killed.cmd.Process.Kill()
	killed.WaitExit()
	waitNoProcesses(t, killed.RunDir) // workers die with their gateway
	if _, err := os.Stat(killed.RunDir); err != nil {
		t.Fatalf("kill -9 left no runtime folder to clean (%v): the test proves nothing", err)
	}
	next := startGateway(t, files)
	next.WaitLog(func(l logLine) bool {
		return l.Msg() == "removed the runtime folder of a gateway that is gone" && l.Str("dir") == killed.RunDir
	})
	if _, err := os.Stat(killed.RunDir); !os.IsNotExist(err) {
		t.Fatalf("stale runtime folder %s still there: %v", killed.RunDir, err)
	}
	if _, err := os.Stat(live.RunDir); err != nil {
		t.Fatalf("a live gateway's runtime folder was removed: %v", err)
	}
	if r := live.Get("/hello"); r.Status != 200 {
		t.Fatalf("the live gateway after another's start: %d %q", r.Status, r.Body)
	}
}
