package routable

import (
	"os/exec"
	"strings"
	"testing"
)

// The control plane (lifecycle) and the data plane (gateway) meet only in
// this package: neither imports the other, directly or not, lifecycle
// imports nothing under gateway/, and this package and guard import
// neither plane.
func TestImportArrowsRunOneWay(t *testing.T) {
	for _, c := range []struct {
		pkg       string
		forbidden []string // import paths, or prefixes ending in "/"
	}{
		{"edgeway.dev/edgeway/internal/lifecycle", []string{"edgeway.dev/edgeway/internal/gateway", "edgeway.dev/edgeway/internal/gateway/"}},
		{"edgeway.dev/edgeway/internal/gateway", []string{"edgeway.dev/edgeway/internal/lifecycle", "edgeway.dev/edgeway/internal/lifecycle/"}},
		{"edgeway.dev/edgeway/internal/routable", []string{"edgeway.dev/edgeway/internal/gateway", "edgeway.dev/edgeway/internal/gateway/", "edgeway.dev/edgeway/internal/lifecycle", "edgeway.dev/edgeway/internal/lifecycle/"}},
		{"edgeway.dev/edgeway/internal/guard", []string{"edgeway.dev/edgeway/internal/gateway", "edgeway.dev/edgeway/internal/gateway/", "edgeway.dev/edgeway/internal/lifecycle", "edgeway.dev/edgeway/internal/routable"}},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", c.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", c.pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) == 0 || deps[len(deps)-1] != c.pkg {
			t.Fatalf("go list -deps %s: unexpected output %q", c.pkg, out)
		}
		for _, d := range deps {
			for _, f := range c.forbidden {
				if d == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
					t.Errorf("%s imports %s", c.pkg, d)
				}
			}
		}
	}
}
