package observe

import (
	"bytes"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

func panicAt(log zerolog.Logger, where string) bool {
	return Guard(log, where, func() { panic("boom") })
}

func TestGuardRecoversCountsAndLogsTheStackOnce(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	const where = "test-site"
	c := metrics.GetOrCreateCounter(`edgeway_panics_total{where="` + where + `"}`)
	before := c.Get()
	for i := 0; i < 10; i++ {
		if panicAt(log, where) {
			t.Fatal("Guard reported a normal return for a panic")
		}
	}
	if got := c.Get() - before; got != 10 {
		t.Fatalf("counted %d panics, want 10", got)
	}
	if n := strings.Count(buf.String(), `"stack"`); n != 1 {
		t.Fatalf("%d stacks logged for 10 panics at one site, want 1:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "panicAt") {
		t.Fatalf("the stack does not show the panic site:\n%s", buf.String())
	}
	if !Guard(log, where, func() {}) {
		t.Fatal("Guard reported a panic for a normal return")
	}
}
