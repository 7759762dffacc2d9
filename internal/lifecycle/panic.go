package lifecycle

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// panicPause is how long a Manager waits after a recovered panic before
// it runs again.
const panicPause = 100 * time.Millisecond

// lifecyclePanics counts panics recovered in Manager goroutines.
var lifecyclePanics = metrics.GetOrCreateCounter(`edgeway_panics_total{where="` + observe.PanicLifecycle + `"}`)

// recovered logs and counts a panic of the manager's goroutine. The stack
// is logged the first time only: a bug that panics on every event would
// otherwise flood the log.
func (m *Manager) recovered(r any) {
	lifecyclePanics.Inc()
	m.panics++
	ev := m.log.Error().Str("panic", fmt.Sprint(r)).Int("panics", m.panics)
	if m.panics == 1 {
		ev = ev.Str("stack", string(debug.Stack()))
	}
	ev.Msg("lifecycle goroutine panicked; restarting it from its current state")
}

var (
	errStartPanicked   = errors.New("starting the worker panicked")
	errControlPanicked = errors.New("reading the control connection panicked")
)

// goGuarded runs f on a goroutine of its own. A panic in f is recovered,
// counted in edgeway_panics_total{where=where} and logged (its stack once
// per code site), then cleanup runs: it must leave what f owned in a state
// its owner can go on from (report the event f would have sent, kill a
// process whose state is unknown).
func goGuarded(log zerolog.Logger, where string, f, cleanup func()) {
	go func() {
		if !observe.Guard(log, where, f) && cleanup != nil {
			cleanup()
		}
	}()
}
