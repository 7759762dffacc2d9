package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `edgeway check` names every function.json problem with its file and
// field, all files at once, and fails.
func TestCheckNamesFunctionJSONFileAndField(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"a/index.ts":      `Deno.serve(() => new Response("a"));`,
		"a/function.json": `{"maxWorkers": 0}`,
		"b/index.ts":      `Deno.serve(() => new Response("b"));`,
		"b/function.json": `{"breaker": {"errorRate": 2}}`,
	})
	out, err := exec.Command(binPath(t), "check", "--functions", dir, "--deno", denoPath(t)).CombinedOutput()
	if err == nil {
		t.Fatalf("check passed invalid function.json files:\n%s", out)
	}
	for _, want := range []string{
		filepath.Join(dir, "a", "function.json") + ": maxWorkers: ",
		filepath.Join(dir, "b", "function.json") + ": breaker.errorRate: ",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check's output lacks %q:\n%s", want, out)
		}
	}
}
