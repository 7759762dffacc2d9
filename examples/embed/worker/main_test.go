package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProgramCallsItsWorker builds the example and runs it with real Deno
// (EDGEWAY_TEST_DENO, else deno on PATH).
func TestProgramCallsItsWorker(t *testing.T) {
	deno := os.Getenv("EDGEWAY_TEST_DENO")
	if deno == "" {
		var err error
		if deno, err = exec.LookPath("deno"); err != nil {
			t.Skip("no Deno: set EDGEWAY_TEST_DENO or put deno on PATH")
		}
	}
	bin := filepath.Join(t.TempDir(), "worker")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-deno", deno)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	want := "200 Hello from /hello\nrequests served: 1\n"
	if string(out) != want {
		t.Fatalf("stdout %q, want %q\nstderr:\n%s", out, want, stderr.String())
	}
	if !strings.Contains(stderr.String(), "worker stdout: serving /hello") {
		t.Fatalf("the worker's log line is missing from stderr:\n%s", stderr.String())
	}
}
