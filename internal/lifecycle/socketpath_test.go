package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
)

// A TMPDIR long enough that worker socket paths overflow sun_path is
// refused at start, with the path, the limit and the fix; the runtime
// folder made for the check does not stay.
func TestLongTmpdirIsRefusedAtStart(t *testing.T) {
	tmp := t.TempDir()
	long := filepath.Join(tmp, strings.Repeat("d", 100-len(tmp)))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", long)
	_, err := NewSupervisor(config.Defaults(), &config.Layout{Root: t.TempDir()}, zerolog.Nop())
	if err == nil {
		t.Fatal("a TMPDIR too long for worker sockets was accepted")
	}
	for _, want := range []string{long, "107 bytes", "set TMPDIR to a shorter folder"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(long, runDirPrefix+"*")); len(left) > 0 {
		t.Errorf("runtime folders left behind: %v", left)
	}
}

func TestCheckSocketPaths(t *testing.T) {
	// The longest socket name is "/c" + 20 digits + ".sock": 27 bytes,
	// so a folder may take 107-27 = 80.
	dir := func(n int) string { return "/" + strings.Repeat("r", n-1) }
	private := &sandbox{tmp: config.TmpPrivate}
	underTmp := func(n int) string { return "/tmp/" + strings.Repeat("r", n-5) }
	for _, tc := range []struct {
		name   string
		runDir string
		sb     *sandbox
		ok     bool
	}{
		{"short", "/tmp/edgeway-123", nil, true},
		{"80 bytes", dir(80), nil, true},
		{"81 bytes", dir(81), nil, false},
		{"private /tmp, typical", "/tmp/edgeway-1234567890", private, true},
		// Seen from the gateway, a boxed worker's socket is
		// <runDir>/tmp-w<id><runDir without /tmp>/c<id>.sock.
		{"private /tmp, long", underTmp(45), private, false},
		{"private /tmp, folder outside /tmp", dir(80), private, true},
	} {
		err := checkSocketPaths(tc.runDir, tc.sb)
		if (err == nil) != tc.ok {
			t.Errorf("%s: checkSocketPaths(%d bytes) = %v, want ok=%v", tc.name, len(tc.runDir), err, tc.ok)
		}
	}
}
