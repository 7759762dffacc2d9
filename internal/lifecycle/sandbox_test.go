package lifecycle

import (
	"os"
	"slices"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/config"
)

func TestWorkerBoxFlags(t *testing.T) {
	runDir := t.TempDir()
	spec := &launchSpec{fn: &config.Function{Name: "f", Dir: "/srv/fns/f"}, readable: []string{"/srv/fns/f", "/tmp/elsewhere/_shared"}, compat: true}
	base := sandbox{npmCache: "/cache/deno/npm", sys: []string{"hostname", "cpus"}, deno: "/usr/bin/deno"}
	for i, tc := range []struct {
		tmp     string
		want    []string
		tmpdir  string // "" = the worker's folder
		private bool
	}{
		{config.TmpPrivate, []string{"--allow-read=/tmp,/cache/deno/npm", "--allow-write=/tmp", "--allow-sys=hostname,cpus"}, "/tmp", true},
		{config.TmpShared, []string{"--allow-sys=hostname,cpus"}, "", false},
		{config.TmpOff, []string{"--allow-sys=hostname,cpus"}, "", false},
	} {
		t.Run(tc.tmp, func(t *testing.T) {
			sb := base
			sb.tmp = tc.tmp
			b, err := sb.box(spec, runDir, uint64(i+1), "/tmp/edgeway-1/bootstrap.js", "/tmp/edgeway-1/c1.sock", "/run/x/map.json")
			if err != nil {
				t.Fatal(err)
			}
			defer b.cleanup()
			for _, f := range tc.want {
				if !slices.Contains(b.perms, f) {
					t.Errorf("flags %v lack %s", b.perms, f)
				}
			}
			if strings.Contains(strings.Join(b.perms, " "), "--deny-") {
				t.Errorf("denials are not reliable in Deno 2.9.6, never used: %v", b.perms)
			}
			want := tc.tmpdir
			if want == "" {
				want = b.tmpDir
				if !slices.Contains(b.perms, "--allow-write="+strings.Join(writeList(tc.tmp, b.tmpDir), ",")) {
					t.Errorf("flags %v do not grant the worker's folder", b.perms)
				}
			}
			if !slices.Equal(b.env, []string{"TMPDIR=" + want}) {
				t.Errorf("env %v, want TMPDIR=%s", b.env, want)
			}
			if b.private != tc.private {
				t.Errorf("private = %v", b.private)
			}
			if tc.private && !slices.Equal(b.binds, []string{"/tmp/edgeway-1/bootstrap.js", "/tmp/edgeway-1/c1.sock", "/tmp/elsewhere/_shared"}) {
				t.Errorf("binds %v: want the paths under /tmp only, file by file", b.binds)
			}
			if tc.private {
				if got := b.hostPath("/tmp/edgeway-1/w1.sock"); got != b.tmpDir+"/edgeway-1/w1.sock" {
					t.Errorf("host path of the worker's socket: %s", got)
				}
			} else if got := b.hostPath("/tmp/edgeway-1/w1.sock"); got != "/tmp/edgeway-1/w1.sock" {
				t.Errorf("host path without a namespace: %s", got)
			}
			if st, err := os.Stat(b.tmpDir); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("worker folder: %v %v", st, err)
			}
		})
	}
	// Other profiles get nothing.
	other := *spec
	other.compat = false
	if b, err := base.box(&other, runDir, 9); b != nil || err != nil {
		t.Fatalf("non-default profile got %+v, %v", b, err)
	}
}

func writeList(mode, dir string) []string {
	if mode == config.TmpShared {
		return []string{"/tmp", dir}
	}
	return []string{dir}
}

func TestWorkerBindsKeepOutermost(t *testing.T) {
	sb := &sandbox{deno: "/tmp/bin/deno"}
	spec := &launchSpec{fn: &config.Function{Dir: "/tmp/proj/functions/f", Deps: config.Deps{Config: "/tmp/proj/functions/f/deno.json", Lock: "/tmp/proj/deno.lock"}},
		readable: []string{"/tmp/proj/functions/f", "/tmp/proj/functions/_shared", "/tmp/projx/static", "/tmp", "/srv/other"}}
	got := sb.workerBinds(spec, []string{"/tmp/run/bootstrap.js", "/tmp/run/c1.sock"})
	if want := []string{"/tmp/bin/deno", "/tmp/proj/deno.lock", "/tmp/proj/functions/_shared", "/tmp/proj/functions/f", "/tmp/projx/static", "/tmp/run/bootstrap.js", "/tmp/run/c1.sock"}; !slices.Equal(got, want) {
		t.Fatalf("binds %v, want %v", got, want)
	}
}

func TestCompatProfile(t *testing.T) {
	for _, tc := range []struct {
		perms []string
		want  bool
	}{{nil, true}, {[]string{"standard"}, true}, {[]string{"strict"}, false}, {[]string{"--allow-net", "--allow-env"}, false}} {
		if got := compatProfile(tc.perms); got != tc.want {
			t.Errorf("compatProfile(%v) = %v", tc.perms, got)
		}
	}
}
