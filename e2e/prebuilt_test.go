package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// prebuiltFolder has what a build must carry: an npm package, a _shared
// module, an import map (deno.json imports with an npm alias and a local
// prefix), a function reading a sibling file through import.meta.url,
// settings from function.json and config.toml, and an env read.
var prebuiltFolder = map[string]string{
	"../config.toml":      "[functions.open]\nverify_jwt = false\n",
	"_shared/greet.ts":    `export const greet = (n: string): string => "hello " + n;`,
	"npm/index.ts":        `import isNumber from "npm:is-number@7.0.0"; Deno.serve(() => Response.json({ five: isNumber(5), word: isNumber("x") }));`,
	"shared/index.ts":     `import { greet } from "../_shared/greet.ts"; Deno.serve(() => new Response(greet("shared")));`,
	"mapped/deno.json":    `{"imports": {"is-num": "npm:is-number@7.0.0", "@lib/": "./lib/"}}`,
	"mapped/lib/twice.ts": `export const twice = (n: number) => n * 2;`,
	"mapped/index.ts":     `import isNum from "is-num"; import { twice } from "@lib/twice.ts"; Deno.serve(() => Response.json({ n: isNum(3), t: twice(21) }));`,
	"page/index.ts":       `const html = await Deno.readTextFile(new URL("./index.html", import.meta.url)); const data = JSON.parse(await Deno.readTextFile(new URL("./data/info.json", import.meta.url))); Deno.serve(() => new Response(html + data.v, { headers: { "content-type": "text/html" } }));`,
	"page/index.html":     `<h1>page</h1>`,
	"page/data/info.json": `{"v": 42}`,
	"page/.env":           "SECRET_IN_DOTENV=x\n",
	"open/index.ts":       `Deno.serve(() => new Response(Deno.env.get("GREETING") ?? "none"));`,
	"open/function.json":  `{"maxWorkers": 2}`,
}

// runBin runs an edgeway command and returns its combined output.
func runBin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binPath(t), args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// answers calls every function of prebuiltFolder.
func answers(t *testing.T, g *Gateway) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"npm", "shared", "mapped", "page", "open"} {
		r := g.Get("/" + name)
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
		out[name] = string(r.Body)
	}
	return out
}

// readTree reads every file under dir by relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyTree copies src to dst (a fresh folder).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	for rel, data := range readTree(t, src) {
		p := filepath.Join(dst, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPrebuiltServesWithoutSources builds a folder twice (byte-identical
// output, no machine paths inside), then serves the artifact from a fresh
// folder with the sources deleted, an empty DENO_DIR and no npm registry:
// every function answers as it did from the folder. One flipped byte of a
// bundle then refuses the start, naming the file.
func TestPrebuiltServesWithoutSources(t *testing.T) {
	env := map[string]string{"GREETING": "hi from env"}
	for k, v := range env {
		t.Setenv(k, v)
	}
	src := startGateway(t, prebuiltFolder)
	want := answers(t, src)
	src.Signal(syscall.SIGTERM)
	src.WaitExit()

	tmp := t.TempDir()
	dist1, dist2 := filepath.Join(tmp, "dist1"), filepath.Join(tmp, "sub", "dist2")
	for _, out := range []string{dist1, dist2} {
		if log, err := runBin(t, "build", "--functions", src.Dir, "--out", out, "--sourcemap", "linked", "--deno", denoPath(t)); err != nil {
			t.Fatalf("build: %v\n%s", err, log)
		}
	}
	a, b := readTree(t, dist1), readTree(t, dist2)
	if len(a) != len(b) {
		t.Fatalf("two builds differ in files: %d and %d", len(a), len(b))
	}
	home, _ := os.UserHomeDir()
	for rel, data := range a {
		if !bytes.Equal(data, b[rel]) {
			t.Errorf("two builds of the same folder differ in %s", rel)
		}
		for _, machine := range []string{src.Dir, filepath.Dir(src.Dir), tmp, home} {
			if machine != "" && machine != "/" && bytes.Contains(data, []byte(machine)) {
				t.Errorf("%s holds the machine path %s", rel, machine)
			}
		}
		if strings.Contains(rel, ".env") || bytes.Contains(data, []byte("SECRET_IN_DOTENV")) {
			t.Errorf("%s: a .env file was shipped", rel)
		}
	}
	for _, rel := range []string{"manifest.json", "functions/page/index.html", "functions/page/data/info.json", "functions/npm/index.js", "functions/npm/index.js.map"} {
		if _, ok := a[rel]; !ok {
			t.Errorf("the build lacks %s", rel)
		}
	}
	manifest := string(a["manifest.json"])
	for _, s := range []string{`"schema": 1`, `"GREETING"`, `"maxWorkers": 2`, `"auth": false`} {
		if !strings.Contains(manifest, s) {
			t.Errorf("manifest.json lacks %s:\n%s", s, manifest)
		}
	}

	// A fresh machine: the artifact alone, no sources, no Deno cache, no
	// npm registry.
	app := filepath.Join(t.TempDir(), "app")
	copyTree(t, dist1, app)
	if err := os.RemoveAll(filepath.Dir(src.Dir)); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DENO_DIR", t.TempDir())
	t.Setenv("NPM_CONFIG_REGISTRY", "http://127.0.0.1:9/")
	g := launch(t, src.Dir, "--prebuilt", app)
	if err := g.waitListening(); err != nil {
		t.Fatalf("prebuilt gateway did not start: %v\n%s", err, g.logs.text())
	}
	got := answers(t, g)
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: prebuilt answered %q, the folder %q", name, got[name], w)
		}
	}
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "serving a verified prebuilt artifact" && len(l.Str("artifact_id")) == 64
	})
	g.Signal(syscall.SIGTERM)
	g.WaitExit()

	bundle := filepath.Join(app, "functions", "shared", "index.js")
	data, _ := os.ReadFile(bundle)
	data[len(data)/2] ^= 1
	os.WriteFile(bundle, data, 0o644)
	bad := launch(t, src.Dir, "--prebuilt", app)
	if code := bad.WaitExit(); code == 0 {
		t.Fatal("a tampered artifact was served")
	}
	if log := bad.logs.text(); !strings.Contains(log, "functions/shared/index.js failed its integrity check: sha256") {
		t.Fatalf("the refusal does not name the tampered file:\n%s", log)
	}
}
