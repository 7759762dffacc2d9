package lifecycle

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
)

// noPrivateTmp keeps a test's supervisor from setting up private /tmps
// (the thread setup works in a test binary run as root): the socket paths
// inside one are longer than t.TempDir() as TMPDIR allows.
func noPrivateTmp(o config.Options) config.Options {
	o.FunctionTmpSetup = config.TmpSetupExec // the helper is never a test binary
	return o
}

// threadSpawner is a spawner whose thread sets up private /tmps, or a skip
// where this system does not allow it (not root, namespaces refused).
func threadSpawner(t *testing.T) *spawner {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the thread setup of a private /tmp needs root")
	}
	sp := newSpawner(zerolog.Nop())
	if err := probeThread(t.TempDir(), sp); err != nil {
		t.Skipf("no mount namespaces here: %v", err)
	}
	return sp
}

// run starts sh -c script through sp (in tmp when not nil) and returns
// its output.
func run(t *testing.T, sp *spawner, tmp *privateTmp, dir, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if tmp != nil {
		sp.privateTmp.Store(cmd, tmp)
	}
	if err := sp.start(cmd); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v: %s", script, err, out.String())
	}
	return out.String()
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The host state every private start must leave as it was: the gateway's
// mount table and namespace, and a plain start from the same thread sees
// the host's /tmp in the gateway's working folder.
type hostView struct {
	mountinfo, ns, cwd, marker string
}

func currentHost(t *testing.T, marker string) hostView {
	t.Helper()
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return hostView{mountinfo: readFile(t, "/proc/self/mountinfo"), ns: ns, cwd: cwd, marker: marker}
}

func checkPlainStartSeesHost(t *testing.T, sp *spawner, h hostView) {
	t.Helper()
	got := run(t, sp, nil, "", `cat "$M"; echo; readlink /proc/self/ns/mnt; readlink /proc/self/cwd`, "M="+h.marker)
	if want := "host\n" + h.ns + "\n" + h.cwd + "\n"; got != want {
		t.Errorf("a plain start after private ones saw %q, want %q (the host's /tmp, namespace and working folder)", got, want)
	}
	if now := currentHost(t, h.marker); now.mountinfo != h.mountinfo || now.ns != h.ns {
		t.Errorf("the gateway's mount table changed:\nbefore %s\nafter %s", h.mountinfo, now.mountinfo)
	}
}

func hostMarker(t *testing.T) string {
	t.Helper()
	f, err := os.CreateTemp("/tmp", "edgeway-host-marker-")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("host")
	f.Close()
	t.Cleanup(func() { os.Remove(f.Name()) })
	return f.Name()
}

// Each worker started from the spawner's thread sees its own folder as
// /tmp, nothing else of the host's /tmp but what is bound back, read-only;
// and the gateway's namespace is untouched after many such starts.
func TestSpawnerPrivateTmp(t *testing.T) {
	sp := threadSpawner(t)
	marker := hostMarker(t)
	shared, err := os.MkdirTemp("/tmp", "edgeway-bound-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	if err := os.WriteFile(filepath.Join(shared, "f"), []byte("shared"), 0o644); err != nil {
		t.Fatal(err)
	}
	host := currentHost(t, marker)
	const script = `echo mine > /tmp/own; cat /tmp/own
test -e "$M" && echo SEES_HOST_TMP
test -e "$OTHER/own" && echo SEES_OTHER
cat "$B/f"; echo
echo x 2>/dev/null > "$B/f" && echo WROTE_BOUND
touch "$B/new" 2>/dev/null && echo CREATED_IN_BOUND
readlink /proc/self/ns/mnt
pwd -P`
	var dirs []string
	for i := range 20 {
		dir := filepath.Join(t.TempDir(), "w")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
		other := "/nonexistent"
		if i > 0 {
			other = dirs[i-1]
		}
		wd := "/"
		if i%2 == 1 {
			wd = shared // under /tmp: reached through its bind
		}
		got := run(t, sp, &privateTmp{dir: dir, binds: []string{shared}}, wd, script, "M="+marker, "B="+shared, "OTHER="+other)
		lines := strings.Split(strings.TrimSpace(got), "\n")
		if len(lines) != 4 || lines[0] != "mine" || lines[1] != "shared" || lines[2] == host.ns || lines[3] != wd {
			t.Fatalf("worker %d saw:\n%s\nwant its own /tmp, the bound file read-only, another namespace than %s, working folder %s", i, got, host.ns, wd)
		}
		if readFile(t, filepath.Join(dir, "own")) != "mine\n" {
			t.Fatalf("worker %d's /tmp/own is not in its folder", i)
		}
	}
	if _, err := os.Stat("/tmp/own"); err == nil {
		t.Errorf("a worker's /tmp/own landed in the host's /tmp")
	}
	checkPlainStartSeesHost(t, sp, host)
}

// A setup that fails half-way (here the private folder is missing, after
// the namespace was entered) answers an error and leaves the thread home.
func TestSpawnerReturnsHomeAfterFailedSetup(t *testing.T) {
	sp := threadSpawner(t)
	host := currentHost(t, hostMarker(t))
	cmd := exec.Command("true")
	cmd.Dir = "/" // the test's own folder may lie under /tmp (a checkout there), covered in the namespace
	sp.privateTmp.Store(cmd, &privateTmp{dir: "/nonexistent-edgeway-private"})
	if err := sp.start(cmd); err == nil || !strings.Contains(err.Error(), "bind") {
		cmd.Wait()
		t.Fatalf("start with a missing private folder answered %v", err)
	}
	checkPlainStartSeesHost(t, sp, host)
}

// If the thread cannot come back, it never starts anything again.
func TestSpawnerRefusesAfterFailedReturn(t *testing.T) {
	sp := threadSpawner(t)
	sp.failReturn = errors.New("injected") // read by the thread after the next send
	cmd := exec.Command("true")
	cmd.Dir = "/" // the test's own folder may lie under /tmp (a checkout there), covered in the namespace
	sp.privateTmp.Store(cmd, &privateTmp{dir: t.TempDir()})
	if err := sp.start(cmd); err != nil {
		t.Fatalf("the start itself worked: %v", err)
	}
	cmd.Wait()
	for _, private := range []bool{false, true} {
		cmd := exec.Command("true")
		cmd.Dir = "/"
		if private {
			sp.privateTmp.Store(cmd, &privateTmp{dir: t.TempDir()})
		}
		err := sp.start(cmd)
		if err == nil {
			cmd.Wait()
			t.Fatalf("a start (private %v) after a failed return worked", private)
		}
		if !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "injected") {
			t.Errorf("refusal says %v", err)
		}
	}
	if err := probeThread(t.TempDir(), sp); err == nil {
		t.Errorf("the probe worked after a failed return")
	}
}

// A command wrapped for a thread-made private /tmp starts only through its
// spawner: started any other way it would see the host's /tmp.
func TestWrapFailsClosedOutsideItsSpawner(t *testing.T) {
	sp := threadSpawner(t)
	sb := &sandbox{tmp: config.TmpPrivate, setup: config.TmpSetupThread, spawner: sp}
	box := &workerBox{tmpDir: t.TempDir(), private: true}
	for _, other := range []func(*exec.Cmd) error{
		func(c *exec.Cmd) error { return c.Start() },
		func(c *exec.Cmd) error { return newSpawner(zerolog.Nop()).start(c) },
	} {
		cmd := exec.Command("/bin/sh", "-c", "test -e /tmp/own-marker")
		cmd.Dir = "/"
		box.wrap(cmd, sb)
		if err := other(cmd); !errors.Is(err, errPrivateTmpElsewhere) {
			if err == nil {
				cmd.Wait()
			}
			t.Fatalf("a wrapped command started elsewhere: %v", err)
		}
		sp.privateTmp.Delete(cmd)
	}
	if err := os.WriteFile(filepath.Join(box.tmpDir, "own-marker"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", "test -e /tmp/own-marker")
	cmd.Dir = "/"
	box.wrap(cmd, sb)
	if err := sp.start(cmd); err != nil {
		t.Fatalf("start through its spawner: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the worker does not see its own /tmp: %v", err)
	}
}
