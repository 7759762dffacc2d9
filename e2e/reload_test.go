package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

func versionFn(v string) string {
	return `import { tag } from "../_shared/tag.ts";
Deno.serve(() => new Response("` + v + ` " + tag));`
}

func write(t *testing.T, g *Gateway, rel, content string) {
	t.Helper()
	p := filepath.Join(g.Dir, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reloaded waits for the n-th "function reloaded" of fn (logged once the
// new version is routable).
func reloaded(g *Gateway, fn string, n int) {
	g.t.Helper()
	g.WaitLogCount(func(l logLine) bool { return l.Msg() == "function reloaded" && l.Str("function") == fn }, n)
}

func expectBody(t *testing.T, g *Gateway, path, want string) {
	t.Helper()
	if r := g.Get(path); r.Status != 200 || string(r.Body) != want {
		t.Fatalf("GET %s = %d %q, want %q", path, r.Status, r.Body, want)
	}
}

func TestEditUnderLoadLosesNoRequest(t *testing.T) {
	g := startGateway(t, map[string]string{
		"live/index.ts":  versionFn("v1"),
		"_shared/tag.ts": `export const tag = "a";`,
	}, "--watch", "--watch-debounce", "100ms")
	if r := g.Get("/live"); string(r.Body) != "v1 a" {
		t.Fatalf("before: %q", r.Body)
	}
	var stop atomic.Bool
	var failures, total atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				r, err := g.try("GET", "/live", nil, nil)
				total.Add(1)
				if err != nil || r.Status != 200 || !strings.HasPrefix(string(r.Body), "v") {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%v %d %q", err, r.Status, r.Body))
				}
			}
		}()
	}
	write(t, g, "live/index.ts", versionFn("v2"))
	reloaded(g, "live", 1)
	expectBody(t, g, "/live", "v2 a")
	stop.Store(true)
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d of %d requests failed during the reload; first: %v", failures.Load(), total.Load(), firstFailure.Load())
	}
	t.Logf("%d requests, none failed", total.Load())
}

func TestBrokenSaveKeepsOldVersionThenRecovers(t *testing.T) {
	g := startGateway(t, map[string]string{
		"app/index.ts":   versionFn("v1"),
		"_shared/tag.ts": `export const tag = "a";`,
	}, "--watch", "--watch-debounce", "100ms")
	g.Get("/app")
	write(t, g, "app/index.ts", `Deno.serve(() => new Response("never")`) // syntax error
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "reload failed: the previous version keeps serving" && l.Str("function") == "app"
	})
	if r := g.Get("/app"); r.Status != 200 || string(r.Body) != "v1 a" {
		t.Fatalf("after a broken save: %d %q", r.Status, r.Body)
	}
	write(t, g, "app/index.ts", versionFn("v3"))
	reloaded(g, "app", 1)
	expectBody(t, g, "/app", "v3 a")
}

func TestAddedFolderRoutesAndDeletedOne404s(t *testing.T) {
	g := startGateway(t, map[string]string{
		"old/index.ts":   versionFn("old"),
		"_shared/tag.ts": `export const tag = "a";`,
	}, "--watch", "--watch-debounce", "100ms")
	g.Get("/old")
	write(t, g, "fresh/index.ts", versionFn("fresh"))
	g.WaitLog(func(l logLine) bool { return l.Msg() == "function added" && l.Str("function") == "fresh" })
	if r := g.Get("/fresh"); string(r.Body) != "fresh a" {
		t.Fatalf("new function: %d %q", r.Status, r.Body)
	}
	os.RemoveAll(filepath.Join(g.Dir, "old"))
	g.WaitLog(func(l logLine) bool { return l.Msg() == "function removed; draining" && l.Str("function") == "old" })
	expectError(t, g.Get("/old"), 404, "NOT_FOUND")
}

func TestSharedEditReachesEveryFunction(t *testing.T) {
	g := startGateway(t, map[string]string{
		"one/index.ts":   versionFn("one"),
		"two/index.ts":   versionFn("two"),
		"_shared/tag.ts": `export const tag = "a";`,
	}, "--watch", "--watch-debounce", "100ms")
	g.Get("/one")
	g.Get("/two")
	write(t, g, "_shared/tag.ts", `export const tag = "b";`)
	reloaded(g, "one", 1)
	reloaded(g, "two", 1)
	expectBody(t, g, "/one", "one b")
	expectBody(t, g, "/two", "two b")
}

func TestSIGHUPReloadsWithoutWatch(t *testing.T) {
	g := startGateway(t, map[string]string{
		"hup/index.ts":   versionFn("v1"),
		"_shared/tag.ts": `export const tag = "a";`,
	})
	g.Get("/hup")
	write(t, g, "hup/index.ts", versionFn("v2"))
	if r := g.Get("/hup"); string(r.Body) != "v1 a" {
		t.Fatalf("changed without a signal or --watch: %q", r.Body)
	}
	g.Signal(syscall.SIGHUP)
	reloaded(g, "hup", 1)
	expectBody(t, g, "/hup", "v2 a")
}
