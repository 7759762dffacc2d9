package lifecycle

import (
	"os"
	"slices"
	"strings"
	"testing"

	"edgeway/config"
)

func TestWorkerBoxFlags(t *testing.T) {
	runDir := t.TempDir()
	spec := &launchSpec{fn: &config.Function{Name: "f", Dir: "/srv/fns/f"}, readable: []string{"/srv/fns/f", "/tmp/elsewhere/_shared"}, compat: true}
	base := sandbox{npmCache: "/cache/deno/npm", sys: []string{"hostname", "cpus"},
		guarded: []string{"/tmp/edgeway-1"}, writeGuarded: []string{"/tmp/denodir"}, binds: []string{"/tmp/edgeway-1", "/srv/x"}}
	for i, tc := range []struct {
		tmp      string
		want     []string
		tmpdir   string // "" = the worker's folder
		private  bool
		noDenies bool
	}{
		{config.TmpPrivate, []string{"--allow-read=/tmp,/cache/deno/npm", "--allow-write=/tmp", "--allow-sys=hostname,cpus", "--deny-read=/tmp/edgeway-1", "--deny-write=/tmp/edgeway-1,/tmp/denodir"}, "/tmp", true, false},
		{config.TmpShared, []string{"--allow-sys=hostname,cpus", "--deny-read=/tmp/edgeway-1", "--deny-write=/tmp/edgeway-1,/tmp/denodir"}, "", false, false},
		{config.TmpOff, []string{"--allow-sys=hostname,cpus"}, "", false, true},
	} {
		t.Run(tc.tmp, func(t *testing.T) {
			sb := base
			sb.tmp = tc.tmp
			b, err := sb.box(spec, runDir, uint64(i+1))
			if err != nil {
				t.Fatal(err)
			}
			defer b.cleanup()
			for _, f := range tc.want {
				if !slices.Contains(b.perms, f) {
					t.Errorf("flags %v lack %s", b.perms, f)
				}
			}
			if tc.noDenies && strings.Contains(strings.Join(b.perms, " "), "--deny-") {
				t.Errorf("denials without a /tmp grant: %v", b.perms)
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
			if tc.private && !slices.Equal(b.binds, []string{"/tmp/edgeway-1", "/tmp/elsewhere/_shared"}) {
				t.Errorf("binds %v: want the paths under /tmp only", b.binds)
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
	sb := &sandbox{binds: []string{"/tmp/run", "/tmp/proj", "/opt/deno"}}
	spec := &launchSpec{fn: &config.Function{Dir: "/tmp/proj/functions/f"}, readable: []string{"/tmp/proj/functions/f", "/tmp/projx/static", "/tmp"}}
	got := sb.workerBinds(spec)
	if want := []string{"/tmp/proj", "/tmp/projx/static", "/tmp/run"}; !slices.Equal(got, want) {
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
