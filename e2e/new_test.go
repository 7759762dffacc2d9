package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `edgeway new` scaffolds functions that a real gateway serves as they are:
// the plain one needs a token (401 without), the --public one answers
// without, GET and POST.
func TestNewScaffoldServes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "functions")
	for _, args := range [][]string{{"new", "hello", "--functions", dir}, {"new", "--functions", dir, "--public", "open-one"}} {
		out, err := exec.Command(binPath(t), args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "created ") {
			t.Fatalf("edgeway %v: %v %s", args, err, out)
		}
	}
	if out, err := exec.Command(binPath(t), "new", "hello", "--functions", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "not overwritten") {
		t.Fatalf("a second edgeway new hello: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "hello", "function.json")); !os.IsNotExist(err) {
		t.Fatalf("function.json without --public: %v", err)
	}

	g := launch(t, dir, "--auth", "jwt", "--jwt-secret", strings.Repeat("s", 40))
	if err := g.waitListening(); err != nil {
		t.Fatalf("gateway did not start: %v\n%s", err, g.logs.text())
	}
	expectError(t, g.Get("/functions/v1/hello"), 401, "UNAUTHORIZED")
	if m := g.Get("/functions/v1/open-one").JSON(t); m["message"] != "Hello world!" {
		t.Fatalf("GET the scaffold: %v", m)
	}
	r := g.Do("POST", "/functions/v1/open-one", strings.NewReader(`{"name":"Functions"}`), map[string]string{"Content-Type": "application/json"})
	if m := r.JSON(t); r.Status != 200 || m["message"] != "Hello Functions!" {
		t.Fatalf("POST the scaffold: %d %v", r.Status, m)
	}
}
