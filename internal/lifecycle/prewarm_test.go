package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
)

// poolFolder makes a function folder outside /tmp-like checks: the test's
// temporary folder stands in (compat is off, so /tmp does not matter).
func poolFolder(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPoolFitFor(t *testing.T) {
	on := config.Options{PrewarmPool: 2, PrewarmClasses: 2}
	plain := map[string]string{"index.ts": "Deno.serve(() => new Response('hi'))"}
	for _, tc := range []struct {
		name    string
		opts    config.Options
		files   map[string]string
		deps    config.Deps
		entry   string // relative; "" = index.ts
		link    string // a symlink named link pointing here ("" = none; relative to the folder)
		compat  bool
		perms   []string // nil = --allow-net
		refusal string   // substring; "" = fits
	}{
		{name: "plain function fits", opts: on, files: plain},
		{name: "pool off", opts: config.Options{}, files: plain, refusal: "--prewarm-pool=0"},
		{name: "inspector", opts: config.Options{PrewarmPool: 2, Inspect: "127.0.0.1:9229"}, files: plain, refusal: "--inspect"},
		{name: "--allow-all", opts: on, files: plain, perms: []string{"--allow-all"}, refusal: "--allow-all"},
		{name: "own deno.json", opts: on, files: plain, deps: config.Deps{Config: "/x/deno.json"}, refusal: "deno.json"},
		{name: "own import map entries", opts: on, files: plain, deps: config.Deps{Imports: map[string]string{"a": "npm:a"}}, refusal: "import map"},
		{name: "entry outside", opts: on, files: plain, entry: "../elsewhere.ts", refusal: "outside its folder"},
		{name: "import.meta.main", opts: on, files: map[string]string{"index.ts": "if (import.meta.main) Deno.serve(() => new Response())"}, refusal: "import.meta.main"},
		{name: "Deno.mainModule in a helper", opts: on, files: map[string]string{"index.ts": "import './lib/x.ts'", "lib/x.ts": "console.log(Deno.mainModule)"}, refusal: "Deno.mainModule"},
		{name: "symlink leaving the folder", opts: on, files: plain, link: "/etc", refusal: "leads out of its folder"},
		{name: "symlink inside the folder", opts: on, files: map[string]string{"index.ts": "x", "sub/a.ts": "y"}, link: "sub"},
		{name: "dangling symlink", opts: on, files: plain, link: "nowhere", refusal: "leads out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := poolFolder(t, tc.files)
			if tc.link != "" {
				target := tc.link
				if !filepath.IsAbs(target) {
					target = filepath.Join(dir, target)
				}
				if err := os.Symlink(target, filepath.Join(dir, "link")); err != nil {
					t.Fatal(err)
				}
			}
			entry := tc.entry
			if entry == "" {
				entry = "index.ts"
			}
			fn := &config.Function{Name: "f", Dir: dir, Entrypoint: filepath.Join(dir, entry), Deps: tc.deps}
			perms := tc.perms
			if perms == nil {
				perms = []string{"--allow-net"}
			}
			spec := &launchSpec{fn: fn, readable: []string{dir, "/srv/_shared"}, perms: perms, compat: tc.compat}
			fit := poolFitFor(tc.opts, spec, filepath.Dir(dir), []string{filepath.Join(filepath.Dir(dir), "_shared")})
			if tc.refusal == "" {
				if fit.class == nil {
					t.Fatalf("refused: %s", fit.refusal)
				}
				if fit.entry != "index.ts" || len(fit.class.shared) != 1 || fit.class.shared[0] != "/srv/_shared" {
					t.Errorf("fit = %+v, class %+v", fit, fit.class)
				}
				// The slot mirrors the root: the function and the shared folder.
				if fit.dir != filepath.Base(dir) || fit.links["_shared"] != filepath.Join(filepath.Dir(dir), "_shared") || len(fit.links) != 1 {
					t.Errorf("slot links = %v (dir %q)", fit.links, fit.dir)
				}
				return
			}
			if fit.class != nil || !strings.Contains(fit.refusal, tc.refusal) {
				t.Errorf("refusal = %q (class %v), want it to mention %q", fit.refusal, fit.class != nil, tc.refusal)
			}
		})
	}
}

// TestPoolClassKey: functions share a class exactly when what Deno fixes
// at boot is the same.
func TestPoolClassKey(t *testing.T) {
	opts := config.Options{PrewarmPool: 2}
	key := func(perms []string, mem int, shared string, env []string) string {
		dir := poolFolder(t, map[string]string{"index.ts": "x"})
		fn := &config.Function{Name: "f", Dir: dir, Entrypoint: filepath.Join(dir, "index.ts"), Config: config.FunctionConfig{MemoryLimitMB: mem}}
		spec := &launchSpec{fn: fn, readable: []string{dir, shared}, perms: perms, env: functionEnv{vars: env}}
		fit := poolFitFor(opts, spec, "", nil)
		if fit.class == nil {
			t.Fatal(fit.refusal)
		}
		return fit.class.key
	}
	base := key([]string{"--allow-net"}, 0, "/s", []string{"A=1", "NO_COLOR=1"})
	if got := key([]string{"--allow-net"}, 0, "/s", []string{"B=2", "NO_COLOR=1"}); got != base {
		t.Errorf("a function's own variables changed the class: %q vs %q", got, base)
	}
	for name, other := range map[string]string{
		"profile":  key([]string{"--allow-net", "--allow-env"}, 0, "/s", nil),
		"memory":   key([]string{"--allow-net"}, 128, "/s", nil),
		"shared":   key([]string{"--allow-net"}, 0, "/t", nil),
		"DENO_DIR": key([]string{"--allow-net"}, 0, "/s", []string{"DENO_DIR=/x", "NO_COLOR=1"}),
		"HOME":     key([]string{"--allow-net"}, 0, "/s", []string{"HOME=/x", "NO_COLOR=1"}),
	} {
		if other == base {
			t.Errorf("a different %s gave the same class", name)
		}
	}
}

// TestPrewarmClassesRanked: the classes of the most functions get a pool.
func TestPrewarmClassesRanked(t *testing.T) {
	p := &prewarm{maxClasses: 2, classes: map[string]*classPool{}}
	specs := map[string]*launchSpec{}
	add := func(name, key string) {
		specs[name] = &launchSpec{pool: poolFit{class: &poolClass{key: key}}}
	}
	add("a1", "A")
	add("a2", "A")
	add("a3", "A")
	add("b1", "B")
	add("b2", "B")
	add("c1", "C")
	specs["refused"] = &launchSpec{pool: poolFit{refusal: "no"}}
	p.setClasses(specs)
	if len(p.classes) != 2 || p.classes["A"] == nil || p.classes["B"] == nil {
		t.Fatalf("classes = %v, want A and B", p.classes)
	}
	if got := p.take("C"); got.pp != nil || got.reason != missClass {
		t.Errorf("take of an unpooled class = %+v", got)
	}
	if got := p.take("A"); got.pp != nil || got.reason != missEmpty {
		t.Errorf("take of an empty class = %+v", got)
	}
}

// TestPrewarmSurvivesPanics: a panic while handling a take still answers
// it (a miss: the cold start spawns fresh) and the pool goes on serving
// and stops.
func TestPrewarmSurvivesPanics(t *testing.T) {
	p := &prewarm{maxClasses: 1, log: zerolog.Nop(), reqs: make(chan any), done: make(chan struct{}), classes: map[string]*classPool{}}
	panics := 0
	p.onRequest = func(req any) {
		if _, ok := req.(prewarmTake); ok && panics == 0 {
			panics++
			panic("injected")
		}
	}
	go p.run()
	spec := &launchSpec{pool: poolFit{class: &poolClass{key: "A"}}}
	if pp, miss := p.get(spec); pp != nil || miss != missEmpty {
		t.Errorf("take that panicked = %v, %q; want a miss", pp, miss)
	}
	if pp, miss := p.get(spec); pp != nil || miss != missClass {
		t.Errorf("next take = %v, %q; want the class miss", pp, miss)
	}
	p.shutdown()
	if pp, miss := p.get(spec); pp != nil || miss != missClass {
		t.Errorf("take after shutdown = %v, %q", pp, miss)
	}
}
