package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check reports every function.json problem with its file and field, and
// fails, before type-checking anything.
func TestCheckReportsFunctionJSONProblems(t *testing.T) {
	root := t.TempDir()
	for path, content := range map[string]string{
		"a/index.ts":      `Deno.serve(() => new Response("a"));`,
		"a/function.json": `{"maxWorkers": 0}`,
		"b/index.ts":      `Deno.serve(() => new Response("b"));`,
		"b/function.json": `{"breaker": {"errorRate": 2}, "extra": true}`,
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755)
		os.WriteFile(filepath.Join(root, path), []byte(content), 0o644)
	}
	var out, errOut bytes.Buffer
	// --deno names any executable: the schema is checked before Deno runs.
	if code := check([]string{"--functions", root, "--deno", "true"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut.String())
	}
	for _, want := range []string{
		filepath.Join(root, "a", "function.json") + ": maxWorkers: minimum: got 0, want 1",
		filepath.Join(root, "b", "function.json") + ": breaker.errorRate: maximum: got 2, want 1",
		filepath.Join(root, "b", "function.json") + ": additional properties 'extra' not allowed",
		"3 problem(s) in function.json files",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("check's output lacks %q:\n%s", want, errOut.String())
		}
	}
}
