package lifecycle

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
)

func emptySupervisor(t *testing.T) (*Supervisor, *config.Layout) {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir())
	layout := &config.Layout{Root: t.TempDir()}
	s, err := NewSupervisor(noPrivateTmp(config.Defaults()), layout, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	return s, layout
}

// A panic while the supervisor handles a request fails that request only:
// the loop goes on serving reloads and the stop.
func TestSupervisorSurvivesAPanicInAReload(t *testing.T) {
	s, layout := emptySupervisor(t)
	panics := 1
	s.onRequest = func(req any) {
		if _, ok := req.(reloadRequest); ok && panics > 0 {
			panics--
			panic("injected")
		}
	}
	if err := s.Reload(layout); err == nil {
		t.Fatal("a reload that panicked reported success")
	}
	if err := s.Reload(layout); err != nil {
		t.Fatalf("the reload after a panic: %v", err)
	}
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("Stop did not return after a recovered panic")
	}
	if _, err := os.Stat(s.RunDir()); !os.IsNotExist(err) {
		t.Fatalf("runtime folder left after Stop: %v", err)
	}
	// Reload and Stop after a stop return at once.
	if err := s.Reload(layout); err != nil {
		t.Fatal(err)
	}
	s.Stop()
}

func TestStaleRunDirsOfDeadOwnersAreRemoved(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	tmp := os.TempDir()
	mk := func(name, owner string) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "w1"), 0o700); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o400)
		}
		return dir
	}
	// A process that has exited: its pid is free (or reused, with another
	// start time).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	deadPid := cmd.Process.Pid
	selfStart, err := processStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	dead := mk("edgeway-dead", strconv.Itoa(deadPid)+" 1\n")
	reused := mk("edgeway-reused", strconv.Itoa(os.Getpid())+" 1\n") // same pid, other start time
	live := mk("edgeway-live", strconv.Itoa(os.Getpid())+" "+selfStart+"\n")
	unowned := mk("edgeway-unowned", "")
	garbled := mk("edgeway-garbled", "not a record")
	other := mk("not-edgeway", strconv.Itoa(deadPid)+" 1\n")
	RemoveStaleRunDirs(zerolog.Nop())
	for dir, want := range map[string]bool{dead: false, reused: false, live: true, unowned: true, garbled: true, other: true} {
		_, err := os.Stat(dir)
		if exists := err == nil; exists != want {
			t.Errorf("%s: exists = %v, want %v", filepath.Base(dir), exists, want)
		}
	}
}

// A burst of reload requests (SIGHUPs) runs one rescan at a time with at
// most one more queued, never a goroutine each.
func TestRequestReloadCoalesces(t *testing.T) {
	s, layout := emptySupervisor(t)
	defer s.Stop()
	entered := make(chan struct{}, 100)
	release := make(chan struct{})
	var calls atomic.Int32
	rescan := func() (*config.Layout, error) {
		calls.Add(1)
		entered <- struct{}{}
		<-release
		return layout, nil
	}
	s.RequestReload(rescan, "test")
	<-entered // the first rescan runs and blocks
	for i := 0; i < 50; i++ {
		s.RequestReload(rescan, "test")
	}
	close(release)
	<-entered // the one queued request runs
	s.Stop()
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d rescans for 51 requests made during one, want 2", n)
	}
}
