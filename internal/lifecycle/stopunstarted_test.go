package lifecycle

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
)

// A supervisor stopped before Start (a host whose listener failed) returns
// and removes its runtime folder: its managers never ran, so nothing
// answers their stop.
func TestStopBeforeStartReturns(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	root := t.TempDir()
	dir := filepath.Join(root, "hello")
	os.MkdirAll(dir, 0o755)
	opts := noPrivateTmp(config.Defaults())
	layout := &config.Layout{Root: root, Functions: []config.Function{{Name: "hello", Dir: dir, Config: config.DefaultFunctionConfig(opts)}}}
	s, err := NewSupervisor(opts, layout, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("Stop before Start did not return")
	}
	if _, err := os.Stat(s.RunDir()); !os.IsNotExist(err) {
		t.Fatalf("runtime folder left after Stop: %v", err)
	}
}
