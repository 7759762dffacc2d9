package lifecycle

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// panicPause is how long a Manager waits after a recovered panic before
// it runs again.
const panicPause = 100 * time.Millisecond

// lifecyclePanics counts panics recovered in Manager goroutines.
var lifecyclePanics = metrics.GetOrCreateCounter(`edgeway_panics_total{where="lifecycle"}`)

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
