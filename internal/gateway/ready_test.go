package gateway

import (
	"sync/atomic"
	"testing"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
)

// loadingTable is a table that reports whether its function set is loaded.
type loadingTable struct {
	fakeFunctions
	ready atomic.Bool
}

func (l *loadingTable) Ready() bool { return l.ready.Load() }

func TestReadyWaitsForTheFunctionSetAndGoesDownOnShutdown(t *testing.T) {
	table := &loadingTable{fakeFunctions: fakeFunctions{}}
	g := New(config.Defaults(), table, Security{}, zerolog.Nop())
	steps := []struct {
		name string
		do   func()
		want int
	}{
		{"function set not loaded", func() {}, 503},
		{"loaded", func() { table.ready.Store(true) }, 200},
		{"shutting down", func() { g.stopping.Store(true) }, 503},
	}
	for _, s := range steps {
		s.do()
		if got := adminGet(g.admin.Handler, pathReady); got != s.want {
			t.Fatalf("%s: /health/ready = %d, want %d", s.name, got, s.want)
		}
	}
	// A table without Ready (the gateway's tests, a fixed set) is ready.
	plain := New(config.Defaults(), fakeFunctions{}, Security{}, zerolog.Nop())
	if got := adminGet(plain.admin.Handler, pathReady); got != 200 {
		t.Fatalf("table without Ready: %d, want 200", got)
	}
}
