package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/config"
)

func TestNewFunction(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "supabase", "functions")
	var out, errOut bytes.Buffer
	if code := run([]string{"new", "hello-world", "--functions", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	index, err := os.ReadFile(filepath.Join(dir, "hello-world", "index.ts"))
	if err != nil || !strings.Contains(string(index), "Deno.serve(") || !strings.Contains(string(index), "/functions/v1/hello-world") {
		t.Fatalf("index.ts: %v %q", err, index)
	}
	// Flags after the name; --public adds function.json, which the
	// gateway's own reader accepts.
	t.Setenv("EDGEWAY_FUNCTIONS", dir)
	if code := run([]string{"new", "pub", "--public"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	layout, err := config.Discover(dir, config.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, fn := range layout.Functions {
		found[fn.Name] = true
		if fn.Name == "pub" && !fn.Config.Public {
			t.Errorf("--public: function.json did not turn auth off")
		}
		if fn.Name == "hello-world" && fn.Config.Public {
			t.Errorf("hello-world is public without --public")
		}
	}
	if !found["hello-world"] || !found["pub"] {
		t.Fatalf("discovered %v", found)
	}

	// Never overwritten.
	os.WriteFile(filepath.Join(dir, "hello-world", "index.ts"), []byte("mine"), 0o644)
	errOut.Reset()
	if code := run([]string{"new", "hello-world"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "not overwritten") {
		t.Fatalf("existing function: exit %d %q", code, errOut.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "hello-world", "index.ts")); string(b) != "mine" {
		t.Fatalf("overwritten: %q", b)
	}

	for _, args := range [][]string{
		{"new"}, {"new", "a", "b"}, {"new", "../escape"}, {"new", "a/b"}, {"new", "_shared"}, {"new", "1abc"}, {"new", ".hidden"}, {"new", "--nope", "x"},
	} {
		errOut.Reset()
		if code := run(args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d %q", args, code, errOut.String())
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); !os.IsNotExist(err) {
		t.Errorf("../escape was created")
	}
	out.Reset()
	if code := run([]string{"new", "--help"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "Usage: edgeway new NAME") {
		t.Errorf("new --help: %d %q", code, out.String())
	}
}
