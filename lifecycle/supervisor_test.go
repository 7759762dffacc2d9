package lifecycle

import (
	"os"
	"testing"
	"time"

	"edgeway/config"

	"github.com/rs/zerolog"
)

func emptySupervisor(t *testing.T) (*Supervisor, *config.Layout) {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir())
	layout := &config.Layout{Root: t.TempDir()}
	s, err := NewSupervisor(config.Defaults(), layout, zerolog.Nop())
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
