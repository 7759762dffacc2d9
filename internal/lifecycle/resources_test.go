package lifecycle

import (
	"os/exec"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestParseStatm(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"9420 2816 2176 6535 0 1081 0\n", (2816 - 2176) * pageSize, true},
		{"1 5 10 1 0 1 0", 0, true}, // shared above resident: never negative
		{"1 2", 0, false},
		{"1 x 2", 0, false},
		{"1 -5 2", 0, false},
		{"", 0, false},
	} {
		got, err := parseStatm([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseStatm(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	tail := " S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0 100 0 0"
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1234 (deno)" + tail, 1750 * time.Millisecond, true},
		{"1234 (a) b) (c)" + tail, 1750 * time.Millisecond, true}, // a name with ") " in it
		{"1234 (deno) S 1 2 3", 0, false},
		{"1234 deno" + tail, 0, false},
		{"1234 (deno) S 1 2 3 4 5 6 7 8 9 10 -1 25 0", 0, false},
	} {
		got, err := parseStatCPU([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1234 (deno) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0 100 0 0"), []byte("9420 2816 2176 6535 0 1081 0"))
	f.Add([]byte("1 ()) R"), []byte("0 0 0"))
	f.Fuzz(func(t *testing.T, stat, statm []byte) {
		if cpu, err := parseStatCPU(stat); err == nil && cpu < 0 {
			t.Fatalf("negative CPU time %v from %q", cpu, stat)
		}
		if anon, err := parseStatm(statm); err == nil && anon < 0 {
			t.Fatalf("negative memory %d from %q", anon, statm)
		}
	})
}

// The process's own /proc files parse.
func TestReadUsageOfSelf(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer cmd.Process.Kill()
	u, err := readUsage(cmd.Process.Pid)
	if err != nil || u.anon <= 0 || u.cpu < 0 {
		t.Fatalf("readUsage: %+v, %v", u, err)
	}
}

// Only the exit status says "heap limit": a SIGTRAP, not what was printed.
func TestDiedOfHeapLimit(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   bool
	}{
		{"kill -TRAP $$", true},
		{"echo 'Fatal JavaScript out of memory: Reached heap limit' >&2; exit 1", false},
		{"echo 'Reached heap limit' >&2; exit 0", false},
		{"kill -KILL $$", false},
	} {
		err := exec.Command("sh", "-c", tc.script).Run()
		if got := diedOfHeapLimit(err); got != tc.want {
			t.Errorf("%q (%v): diedOfHeapLimit %v, want %v", tc.script, err, got, tc.want)
		}
	}
}

// resourceHarness runs a manager whose workers report the usage in use.
func resourceHarness(t *testing.T, mutate func(*harness)) (*harness, *atomic.Pointer[procUsage]) {
	cfg := testConfig()
	cfg.MinWorkers = 1
	cfg.MemoryLimitMB = 128
	cfg.CPUTimeSoftLimit = time.Second
	cfg.CPUTimeHardLimit = 2 * time.Second
	opts := testOptions()
	opts.MemoryOverheadMB = 64
	opts.ResourceCheckInterval = 250 * time.Millisecond
	h := newHarness(t, cfg, opts)
	var usage atomic.Pointer[procUsage]
	usage.Store(&procUsage{anon: 10 << 20, cpu: 300 * time.Millisecond})
	// The first worker reports usage; later ones (replacements) idle.
	h.m.sample = func(p *process) (procUsage, error) {
		if p.id == h.proc(0).p.id {
			return *usage.Load(), nil
		}
		return procUsage{anon: 10 << 20, cpu: 300 * time.Millisecond}, nil
	}
	if mutate != nil {
		mutate(h)
	}
	return h, &usage
}

func TestMemoryWatchdogKillsWorkerAboveLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, usage := resourceHarness(t, nil)
		h.run()
		h.expect(1, 0, 0)
		a := h.proc(0)
		w := h.acquire() // a request in flight when the limit is hit
		usage.Store(&procUsage{anon: 192 << 20, cpu: 300 * time.Millisecond})
		h.sleepUntil(time.Second)
		if a.kills.Load() != 0 {
			t.Fatal("killed at exactly memoryLimitMb + overhead")
		}
		usage.Store(&procUsage{anon: 193 << 20, cpu: 300 * time.Millisecond})
		h.sleepUntil(1250 * time.Millisecond)
		if a.kills.Load() != 1 {
			t.Fatalf("%d kills above the memory limit, want 1", a.kills.Load())
		}
		giveBack(w) // its 546 is checked end to end (e2e TestWorkersMemoryLimit)
		h.settle()
		if st := h.status(); st.LastStopReason != ReasonMemory {
			t.Fatalf("status %+v, want lastStopReason %q", st, ReasonMemory)
		}
		h.expect(1, 0, 0) // replaced for minWorkers
		h.stop()
	})
}

func TestCPUSoftLimitRetiresHardLimitKills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, usage := resourceHarness(t, func(h *harness) {
			h.configure = func(f *fakeProc) { f.ignoreTerm.Store(h.started() == 0) }
		})
		h.run()
		h.expect(1, 0, 0)
		a := h.proc(0)
		w := h.acquire()
		// Boot CPU (300ms at ready) does not count: 1.2s is 0.9s after it.
		usage.Store(&procUsage{anon: 10 << 20, cpu: 1200 * time.Millisecond})
		h.sleepUntil(time.Second)
		h.expect(1, 0, 0)
		// Soft limit: retired (out of routing, in-flight finishes), and a
		// fresh worker takes new requests.
		usage.Store(&procUsage{anon: 10 << 20, cpu: 1300 * time.Millisecond})
		h.sleepUntil(1250 * time.Millisecond)
		if a.kills.Load() != 0 || h.published(a) {
			t.Fatalf("at the soft limit: %d kills, still routed %v; want retired, not killed", a.kills.Load(), h.published(a))
		}
		if h.status().Draining != 1 {
			t.Fatalf("status %+v, want the worker draining", h.status())
		}
		// Hard limit while draining: killed, its request gets 546.
		usage.Store(&procUsage{anon: 10 << 20, cpu: 2300 * time.Millisecond})
		h.sleepUntil(1500 * time.Millisecond)
		if a.kills.Load() != 1 {
			t.Fatalf("%d kills at the hard limit, want 1", a.kills.Load())
		}
		giveBack(w)
		h.settle()
		if st := h.status(); st.LastStopReason != ReasonCPU {
			t.Fatalf("status %+v, want lastStopReason %q", st, ReasonCPU)
		}
		h.stop()
	})
}
