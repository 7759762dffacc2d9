package lifecycle

import (
	"io"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Only refusals are tested in-process: a helper that got past them would
// mount over this process's /tmp. The working path runs in e2e (sandbox_test.go).
func TestNamespaceHelperRefuses(t *testing.T) {
	own := gatewayMountNS()
	if own == "" {
		t.Skip("no /proc/self/ns/mnt")
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no args", nil, "usage"},
		{"same namespace as the gateway", []string{own, t.TempDir(), "0", "--"}, "not in a mount namespace of its own"},
		{"empty namespace", []string{"", t.TempDir(), "0", "--"}, "not in a mount namespace of its own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := enterPrivateTmp(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if code := RunNamespaceHelper([]string{own, t.TempDir(), "0", "--"}, io.Discard); code != nsHelperFailed {
		t.Fatalf("exit code %d, want %d", code, nsHelperFailed)
	}
}

func TestKeptFlags(t *testing.T) {
	for _, tc := range []struct {
		st   int64
		want uintptr
	}{
		{unix.ST_RELATIME, 0},
		{0, unix.MS_STRICTATIME},
		{unix.ST_NOATIME | unix.ST_NOSUID, unix.MS_NOATIME | unix.MS_NOSUID},
		{unix.ST_RELATIME | unix.ST_NODEV | unix.ST_NOEXEC | unix.ST_NODIRATIME, unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NODIRATIME},
	} {
		if got := keptFlags(tc.st); got != tc.want {
			t.Errorf("keptFlags(%#x) = %#x, want %#x", tc.st, got, tc.want)
		}
	}
}

func TestInspectorPortsPerLiveWorker(t *testing.T) {
	in := &inspector{host: "127.0.0.1", base: 9229, used: map[int]bool{}}
	take := func() int {
		t.Helper()
		p, err := in.take()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b, c := take(), take(), take()
	if a != 9229 || b != 9230 || c != 9231 {
		t.Fatalf("ports %d %d %d", a, b, c)
	}
	in.give(b)
	if p := take(); p != 9230 {
		t.Fatalf("a freed port is reused first: got %d", p)
	}
	top := &inspector{base: 65535, used: map[int]bool{}}
	if _, err := top.take(); err != nil {
		t.Fatal(err)
	}
	if _, err := top.take(); err == nil {
		t.Fatal("a port above 65535 was handed out")
	}
}
