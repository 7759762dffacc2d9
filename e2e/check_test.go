package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

func TestCheckPassesOnExamplesAndFailsOnBrokenFunction(t *testing.T) {
	out, err := exec.Command(binPath(t), "check", "--functions", "../examples/supabase/functions", "--deno", denoPath(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("check on the examples: %v\n%s", err, out)
	}
	for _, fn := range []string{"hello", "echo", "stream", "greet", "whoami"} {
		if !strings.Contains(string(out), fn) {
			t.Errorf("table does not list %s:\n%s", fn, out)
		}
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"good/index.ts": `Deno.serve(() => { EdgeRuntime.waitUntil(Promise.resolve()); return new Response("ok"); });`,
		"bad/index.ts":  `const n: number = "text"; Deno.serve(() => new Response(String(n)));`,
	})
	out, err = exec.Command(binPath(t), "check", "--functions", dir, "--deno", denoPath(t)).CombinedOutput()
	if err == nil {
		t.Fatalf("check passed a function with a type error:\n%s", out)
	}
	if !strings.Contains(string(out), "TS2322") || !strings.Contains(string(out), "bad") {
		t.Fatalf("check output does not explain the failure:\n%s", out)
	}
	bad := t.TempDir()
	writeTree(t, bad, map[string]string{"f/index.ts": `x`, "f/function.json": `{"maxWorkers": "many"}`})
	if out, err := exec.Command(binPath(t), "check", "--functions", bad, "--deno", denoPath(t)).CombinedOutput(); err == nil || !strings.Contains(string(out), "maxWorkers") {
		t.Fatalf("check accepted a malformed function.json: %v\n%s", err, out)
	}
}
