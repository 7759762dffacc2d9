package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/setup"
)

func TestCommandHelpExitsZero(t *testing.T) {
	for _, c := range []struct {
		args   []string
		stdout bool // usage on stdout (else stderr, serve's log stream)
	}{
		{[]string{"check", "--help"}, true},
		{[]string{"check", "-h"}, true},
		{[]string{"cache", "--help"}, true},
		{[]string{"serve", "--help"}, false},
	} {
		var out, errOut bytes.Buffer
		code := run(c.args, &out, &errOut)
		got := errOut.String()
		if c.stdout {
			got = out.String()
			if errOut.Len() > 0 {
				t.Errorf("%v wrote to stderr: %q", c.args, errOut.String())
			}
		}
		if code != 0 || !strings.HasPrefix(got, "Usage: edgeway "+c.args[0]+" [flags]") || !strings.Contains(got, "--functions") {
			t.Errorf("%v: exit %d, output %.120q", c.args, code, got)
		}
	}
}

func TestUnknownCommandIsShort(t *testing.T) {
	for _, c := range []struct{ arg, want string }{
		{"bogus", `unknown command "bogus"`},
		{"srve", `unknown command "srve"`},
		{"--port", "flags follow the command, as in `edgeway serve --port`"},
	} {
		var out, errOut bytes.Buffer
		code := run([]string{c.arg, "3000"}, &out, &errOut)
		msg := errOut.String()
		if code != 2 || out.Len() > 0 || !strings.Contains(msg, c.want) || !strings.Contains(msg, "edgeway help") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", c.arg, code, out.String(), msg)
		}
		if n := strings.Count(msg, "\n"); n > 3 {
			t.Errorf("%s: %d lines of stderr, want a short error", c.arg, n)
		}
	}
}

func TestDenoNotFoundGivesHint(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, args := range [][]string{
		{"check", "--deno", "no-such-deno"},
		{"cache", "--deno", "no-such-deno"},
		{"serve", "--auth", "none", "--deno", "no-such-deno"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "`make deno` puts one in .tools/node_modules/.bin/deno") {
			t.Errorf("%v: exit %d, %q", args, code, errOut.String())
		}
	}
	// After `make deno`, the hint names the file.
	os.MkdirAll(filepath.Dir(setup.LocalDeno), 0o755)
	os.WriteFile(setup.LocalDeno, []byte("#!/bin/sh\n"), 0o644)
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "--deno", "no-such-deno"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "pass --deno .tools/node_modules/.bin/deno") {
		t.Errorf("with .tools: exit %d, %q", code, errOut.String())
	}
}

// A short secret from JWT_SECRET is blamed on JWT_SECRET, and a host that
// cannot be listened on names --host too, not only --port.
func TestStartupErrorsNameTheSource(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "index.ts"), []byte(`Deno.serve(() => new Response("a"));`), 0o644)
	t.Setenv("JWT_SECRET", "short")
	var out, errOut bytes.Buffer
	if code := run([]string{"serve", "--functions", dir, "--port", "0"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "edgeway: environment JWT_SECRET: ") {
		t.Errorf("short JWT_SECRET: exit %d %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"serve", "--auth", "none", "--functions", dir, "--host", "300.1.1.1", "--port", "0", "--deno", os.Args[0]}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "flag --host, flag --port: cannot listen on 300.1.1.1:0") {
		t.Errorf("bad host: exit %d %q", code, errOut.String())
	}
}

// --dev's console log written to a file or pipe has no colour codes.
func TestConsoleLogWithoutTerminalHasNoColour(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, _ := config.Parse([]string{"--dev"}, func(string) string { return "" })
	log := setup.NewLogger(opts, f, f)
	log.Warn().Str("k", "v").Msg("hello")
	b, _ := os.ReadFile(f.Name())
	if !strings.Contains(string(b), "hello") || strings.Contains(string(b), "\x1b[") {
		t.Fatalf("console log to a file: %q", b)
	}
}

// A startup error is the last line, after the buffered warnings before it.
func TestStartupErrorIsTheLastLine(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"serve", "--dev", "--log-format", "json", "--functions", filepath.Join(t.TempDir(), "missing"), "--deno", os.Args[0]}, &out, &errOut)
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if code == 0 || len(lines) < 2 || !strings.Contains(lines[0], "--dev: using") || !strings.HasPrefix(lines[len(lines)-1], "edgeway: functions folder") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
}

// A bad --function-permissions is blamed on the flag, not on a
// function.json that does not exist; a bad function.json on that file.
func TestPermissionErrorsNameTheirSource(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "index.ts"), []byte(`Deno.serve(() => new Response("a"));`), 0o644)
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "--functions", dir, "--deno", os.Args[0], "--function-permissions", "a=bogus"}, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), "function a (flag --function-permissions): unknown permission profile \"bogus\"") {
		t.Errorf("exit %d %q", code, errOut.String())
	}
	fj := filepath.Join(dir, "a", "function.json")
	os.WriteFile(fj, []byte(`{"permissions": "bogus"}`), 0o644)
	errOut.Reset()
	if code := run([]string{"check", "--functions", dir, "--deno", os.Args[0]}, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), "function a ("+fj+"): unknown permission profile") {
		t.Errorf("exit %d %q", code, errOut.String())
	}
}
