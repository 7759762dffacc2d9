package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseDefaults(t *testing.T) {
	o, err := Parse(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.Functions != "./supabase/functions" || o.Host != "127.0.0.1" || o.Port != 3100 || o.Deno != "deno" ||
		o.Timeout != 150*time.Second || o.BootTimeout != 15*time.Second || o.ShutdownGrace != 10*time.Second ||
		o.LogLevel != "info" || o.MaxBody != 30<<20 {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestParseSources(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		port int
		tout time.Duration
	}{
		{"env", nil, map[string]string{"EDGEWAY_PORT": "4000", "EDGEWAY_TIMEOUT": "5s"}, 4000, 5 * time.Second},
		{"flag wins", []string{"--port", "5000"}, map[string]string{"EDGEWAY_PORT": "4000"}, 5000, 150 * time.Second},
		{"PORT honoured", nil, map[string]string{"PORT": "6000"}, 6000, 150 * time.Second},
		{"EDGEWAY_PORT beats PORT", nil, map[string]string{"PORT": "6000", "EDGEWAY_PORT": "7000"}, 7000, 150 * time.Second},
		{"equals syntax", []string{"--timeout=500ms"}, nil, 3100, 500 * time.Millisecond},
	}
	for _, c := range cases {
		o, err := Parse(c.args, env(c.env))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if o.Port != c.port || o.Timeout != c.tout {
			t.Errorf("%s: port %d timeout %s", c.name, o.Port, o.Timeout)
		}
	}
}

func TestParseErrorsNameTheSource(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--timeout", "later"}, nil, "--timeout"},
		{nil, map[string]string{"EDGEWAY_BOOT_TIMEOUT": "x"}, "EDGEWAY_BOOT_TIMEOUT"},
		{[]string{"--log-level", "loud"}, nil, "--log-level"},
		{[]string{"--max-body", "lots"}, nil, "--max-body"},
		{[]string{"--min-workers", "3", "--max-workers", "2"}, nil, "--min-workers"},
		{[]string{"stray"}, nil, "stray"},
		{[]string{"--port", "-1"}, nil, "--port"},
		{[]string{"--max-header-fields", "123"}, nil, "--max-header-fields"},
		{[]string{"--max-header-bytes", "49153"}, nil, "--max-header-bytes"},
	}
	for _, c := range cases {
		_, err := Parse(c.args, env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%v, %v) error %v, want it to name %s", c.args, c.env, err, c.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "30MiB": 30 << 20, "2KiB": 2048, "1GB": 1e9, "5 MB": 5e6, "7B": 7} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1.5MiB", "MiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestEveryFlagHasAValidDefaultAndEnvName(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.name] {
			t.Errorf("flag --%s defined twice", s.name)
		}
		seen[s.name] = true
		if !strings.HasPrefix(EnvName(s.name), "EDGEWAY_") || strings.Contains(EnvName(s.name), "-") {
			t.Errorf("bad env name %s", EnvName(s.name))
		}
		var o Options
		if err := s.set(&o, s.def); err != nil {
			t.Errorf("--%s default %q: %v", s.name, s.def, err)
		}
	}
}

func TestFunctionConfig(t *testing.T) {
	base := DefaultFunctionConfig(Defaults())
	dir := t.TempDir()
	write := func(content string) string {
		p := filepath.Join(dir, "function.json")
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	c, err := LoadFunctionConfig(write(`{"minWorkers":1,"maxWorkers":3,"idleTimeout":500,"timeoutMs":2000,"eagerSpawn":true,"memoryLimitMb":64}`), base)
	if err != nil {
		t.Fatal(err)
	}
	if c.MinWorkers != 1 || c.MaxWorkers != 3 || c.IdleTimeout != 500*time.Millisecond || c.Timeout != 2*time.Second || !c.EagerSpawn || c.MemoryLimitMB != 64 {
		t.Fatalf("got %+v", c)
	}
	if c.HealthCheckTimeout != 5*time.Second || c.HealthCheckMaxFailures != 3 || c.BackgroundTaskTimeout != 30*time.Second {
		t.Fatalf("defaults not kept: %+v", c)
	}
	for content, want := range map[string]string{
		`{"maxWorkers":"two"}`:             `"maxWorkers"`,
		`{"idleTimeoutMs":5}`:              `"idleTimeoutMs"`,
		`{"maxWorkers":0}`:                 `"maxWorkers"`,
		`{"minWorkers":3,"maxWorkers":2}`:  `"minWorkers"`,
		`{"timeoutMs":-1}`:                 `"timeoutMs"`,
		`{"maxWorkers":1`:                  "invalid JSON",
		`{"eagerSpawn":true} {"x":1}`:      "after the JSON object",
		`{"healthCheckMaxFailures":0}`:     `"healthCheckMaxFailures"`,
		`{"backgroundTaskKeepsAlive":"y"}`: `"backgroundTaskKeepsAlive"`,
	} {
		_, err := LoadFunctionConfig(write(content), base)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "function.json") {
			t.Errorf("%s: error %v, want file and %s", content, err, want)
		}
	}
	if c, err := LoadFunctionConfig(filepath.Join(dir, "absent.json"), base); err != nil || !reflect.DeepEqual(c, base) {
		t.Fatalf("absent file: %v", err)
	}
}

func TestDiscover(t *testing.T) {
	root := t.TempDir()
	fns := filepath.Join(root, "functions")
	files := map[string]string{
		"functions/a/index.ts":      "",
		"functions/b/index.mjs":     "",
		"functions/c/index.ts":      "",
		"functions/c/index.js":      "",
		"functions/_shared/x.ts":    "",
		"functions/_util/y.ts":      "",
		"functions/9bad/index.ts":   "",
		"functions/empty/readme.md": "",
		"functions/off/index.ts":    "",
		"functions/moved/index.ts":  "",
		"functions/moved/main.ts":   "",
		"elsewhere/ext.ts":          "",
		"config.toml":               "[api]\nport = 1\n[functions.off]\nenabled = false\n[functions.moved]\nentrypoint = \"./functions/moved/main.ts\"\nverify_jwt = false\n[functions.ext]\nentrypoint = \"./elsewhere/ext.ts\"\n",
		"functions/a/function.json": `{"maxWorkers": 2}`,
		"functions/not-a-dir.ts":    "",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	l, err := Discover(fns, Defaults())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range l.Functions {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "a,b,c,ext,moved" {
		t.Fatalf("functions = %v", names)
	}
	if len(l.Shared) != 2 {
		t.Fatalf("shared = %v", l.Shared)
	}
	if l.Lookup("a").Config.MaxWorkers != 2 || filepath.Base(l.Lookup("c").Entrypoint) != "index.ts" ||
		filepath.Base(l.Lookup("moved").Entrypoint) != "main.ts" || filepath.Base(l.Lookup("ext").Entrypoint) != "ext.ts" {
		t.Fatalf("layout %+v", l.Functions)
	}

	os.WriteFile(filepath.Join(root, "config.toml"), []byte("[functions.moved]\nentrypoint = \"./nope.ts\"\n"), 0o644)
	if _, err := Discover(fns, Defaults()); err == nil || !strings.Contains(err.Error(), "functions.moved.entrypoint") {
		t.Fatalf("missing entrypoint: %v", err)
	}
	os.WriteFile(filepath.Join(root, "config.toml"), []byte("[functions.moved]\nentrypoint = 3\n"), 0o644)
	if _, err := Discover(fns, Defaults()); err == nil || !strings.Contains(err.Error(), "config.toml") {
		t.Fatalf("bad type: %v", err)
	}
	if _, err := Discover(filepath.Join(root, "missing"), Defaults()); err == nil || !strings.Contains(err.Error(), "functions folder") {
		t.Fatalf("missing folder: %v", err)
	}
}
