package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The npm package is the one TestSharedImportsAndNpm uses, so caches stay small.
const isNumberDeno = `{"imports": {"is-number": "npm:is-number@7.0.0"}}`

// isNumberLock is what Deno 2.9 writes for isNumberDeno's import; with a
// deno.json it also lists the config's dependencies under "workspace".
const isNumberLock = `{
  "version": "5",
  "specifiers": {"npm:is-number@7.0.0": "7.0.0"},
  "npm": {
    "is-number@7.0.0": {
      "integrity": "sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng=="
    }
  }
}`

// serveDir serves an existing functions folder.
func serveDir(t *testing.T, dir string, args ...string) *Gateway {
	t.Helper()
	g := launch(t, dir, args...)
	if err := g.waitListening(); err != nil {
		t.Fatalf("gateway did not start: %v\n%s", err, g.logs.text())
	}
	return g
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestImportsResolveThroughGeneratedMapAndUserConfig(t *testing.T) {
	g := startGateway(t, map[string]string{
		"_shared/util.ts": `export const state = { n: 0 }; export const word = "shared";`,
		// One module instance whichever way it is imported.
		"bare/index.ts": `import { state, word } from "_shared/util.ts";
import { state as viaPath } from "../_shared/util.ts";
Deno.serve(() => new Response(word + " " + (state === viaPath)));`,
		"aliased/deno.json":    `{"imports": {"@lib/": "./lib/", "is-number": "npm:is-number@7.0.0"}}`,
		"aliased/lib/greet.ts": `export const greet = (n: string) => "hi " + n;`,
		"aliased/index.ts": `import { greet } from "@lib/greet.ts";
import isNumber from "is-number";
import { word } from "_shared/util.ts";
Deno.serve(() => new Response(greet(word) + " " + isNumber(5)));`,
		"jsonc/deno.jsonc": `{
  // comments and trailing commas are fine in deno.jsonc
  "imports": { "@u/": "../_shared/", },
}`,
		"jsonc/index.ts": `import { word } from "@u/util.ts"; Deno.serve(() => new Response("jsonc " + word));`,
		// The user's entry wins over the generated one.
		"override/import_map.json": `{"imports": {"_shared/util.ts": "./mine.ts"}}`,
		"override/mine.ts":         `export const word = "mine";`,
		"override/index.ts":        `import { word } from "_shared/util.ts"; Deno.serve(() => new Response(word));`,
		// config.toml's import map, outside the functions folder, pointing
		// outside it too: the worker may read what the map names.
		"../config.toml":    "[functions.tomlmap]\nimport_map = \"./maps/map.json\"\n",
		"../maps/map.json":  `{"imports": {"@ext/": "../ext/"}}`,
		"../ext/e.ts":       `export const e = "outside";`,
		"tomlmap/index.ts":  `import { e } from "@ext/e.ts"; Deno.serve(() => new Response(e));`,
		"../ext/secret.txt": `not mapped`,
	})
	expectBody(t, g, "/bare", "shared true")
	expectBody(t, g, "/aliased", "hi shared true")
	expectBody(t, g, "/jsonc", "jsonc shared")
	expectBody(t, g, "/functions/v1/override", "mine")
	expectBody(t, g, "/tomlmap", "outside")
	if _, err := os.Stat(filepath.Join(g.Dir, "aliased", "deno.lock")); err == nil {
		t.Errorf("a deno.lock was written into the function's folder")
	}
}

func TestLockFileIsHonouredWithFrozen(t *testing.T) {
	g := startGateway(t, map[string]string{
		// The functions folder's import map and the lock beside it.
		"import_map.json":    `{"imports": {"is-number": "npm:is-number@7.0.0"}}`,
		"deno.lock":          isNumberLock,
		"rootmap/index.ts":   `import isNumber from "is-number"; Deno.serve(() => new Response("root " + isNumber(5)));`,
		"stale/deno.json":    isNumberDeno,
		"stale/deno.lock":    `{"version": "5"}`,
		"stale/index.ts":     `import isNumber from "is-number"; Deno.serve(() => new Response("stale " + isNumber(5)));`,
		"unlocked/deno.json": isNumberDeno,
		"unlocked/index.ts":  `import isNumber from "is-number"; Deno.serve(() => new Response("unlocked " + isNumber(5)));`,
	}, "--deno-flag=--frozen", "--boot-timeout", "30s")
	expectBody(t, g, "/rootmap", "root true")
	expectBody(t, g, "/unlocked", "unlocked true")
	expectError(t, g.Get("/stale"), 503, "BOOT_ERROR")
	g.WaitLog(func(l logLine) bool {
		return l.Str("function") == "stale" && strings.Contains(l.Msg(), "lockfile is out of date")
	})
	if data, _ := os.ReadFile(filepath.Join(g.Dir, "stale", "deno.lock")); string(data) != `{"version": "5"}` {
		t.Errorf("--frozen let Deno rewrite the lock: %s", data)
	}
	if _, err := os.Stat(filepath.Join(g.Dir, "unlocked", "deno.lock")); err == nil {
		t.Errorf("a deno.lock was written into a folder that had none")
	}
}

func TestSymlinkedFoldersAreServedAndWatched(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "functions")
	outside := t.TempDir()
	writeTree(t, dir, map[string]string{
		"_shared/tag.ts": `export const tag = "a";`,
		"plain/index.ts": `import { tag } from "_shared/tag.ts";
import { lib } from "_lib/lib.ts";
Deno.serve(() => new Response("plain " + tag + " " + lib));`,
		"cfg/deno.json": `{"imports": {"@v/": "./v1/"}}`,
		"cfg/v1/v.ts":   `export const v = "v1";`,
		"cfg/v2/v.ts":   `export const v = "v2";`,
		"cfg/index.ts":  `import { v } from "@v/v.ts"; Deno.serve(() => new Response(v));`,
	})
	writeTree(t, outside, map[string]string{
		"linked/index.ts": `import { tag } from "_shared/tag.ts"; Deno.serve(() => new Response("linked v1 " + tag));`,
		"lib/lib.ts":      `export const lib = "x";`,
	})
	symlink(t, filepath.Join(outside, "linked"), filepath.Join(dir, "linked"))
	symlink(t, filepath.Join(outside, "lib"), filepath.Join(dir, "_lib"))
	g := serveDir(t, dir, "--watch", "--watch-debounce", "100ms")
	expectBody(t, g, "/linked", "linked v1 a")
	expectBody(t, g, "/plain", "plain a x")
	expectBody(t, g, "/cfg", "v1")

	// Each step reloads known functions, so the counts below are exact:
	// shared folders are in every function's fingerprint.
	// A changed deno.json reloads its function.
	write(t, g, "cfg/deno.json", `{"imports": {"@v/": "./v2/"}}`)
	reloaded(g, "cfg", 1)
	expectBody(t, g, "/cfg", "v2")

	// An edit in the target of a symlinked function folder.
	writeTree(t, outside, map[string]string{"linked/index.ts": `import { tag } from "_shared/tag.ts"; Deno.serve(() => new Response("linked v2 " + tag));`})
	reloaded(g, "linked", 1)
	expectBody(t, g, "/linked", "linked v2 a")

	// An edit in _shared, imported through the bare specifier.
	write(t, g, "_shared/tag.ts", `export const tag = "b";`)
	reloaded(g, "linked", 2)
	reloaded(g, "plain", 1)
	expectBody(t, g, "/linked", "linked v2 b")
	expectBody(t, g, "/plain", "plain b x")

	// An edit in the target of a symlinked shared folder.
	writeTree(t, outside, map[string]string{"lib/lib.ts": `export const lib = "y";`})
	reloaded(g, "plain", 2)
	expectBody(t, g, "/plain", "plain b y")
}

func TestCheckUsesTheFunctionsConfigAndImportMap(t *testing.T) {
	code := `import { x } from "@lib/x.ts";
import { word } from "_shared/util.ts";
function echo(a) { return a; }
Deno.serve(() => { EdgeRuntime.waitUntil(Promise.resolve()); return new Response(echo(word) + x); });`
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"_shared/util.ts": `export const word: string = "w";`,
		// noImplicitAny off: echo(a) type-checks only with this config.
		"lenient/deno.json": `{"compilerOptions": {"noImplicitAny": false}, "imports": {"@lib/": "./lib/"}}`,
		"lenient/lib/x.ts":  `export const x = 1;`,
		"lenient/index.ts":  code,
	})
	out, err := exec.Command(binPath(t), "check", "--functions", dir, "--deno", denoPath(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("check with the function's deno.json: %v\n%s", err, out)
	}
	writeTree(t, dir, map[string]string{"lenient/deno.json": `{"imports": {"@lib/": "./lib/"}}`})
	out, err = exec.Command(binPath(t), "check", "--functions", dir, "--deno", denoPath(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "TS7006") {
		t.Fatalf("check ignored the function's compilerOptions: %v\n%s", err, out)
	}
	writeTree(t, dir, map[string]string{"lenient/deno.json": `{"imports": {"@lib/": 5}}`})
	for _, cmd := range []string{"check", "serve"} {
		out, err = exec.Command(binPath(t), cmd, "--functions", dir, "--deno", denoPath(t), "--port", "0", "--auth", "none").CombinedOutput()
		if err == nil || !strings.Contains(string(out), filepath.Join(dir, "lenient", "deno.json")) || !strings.Contains(string(out), `field "imports"`) {
			t.Fatalf("%s accepted a malformed deno.json or did not name it: %v\n%s", cmd, err, out)
		}
	}
}
