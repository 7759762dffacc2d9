package lifecycle

import (
	"strconv"
	"time"

	"edgeway.dev/edgeway/internal/upstream"
)

// A request that times out may have met a worker whose event loop is
// blocked in synchronous code (a CPU-spinning handler): it would answer
// nothing ever again, yet nothing replaces it when health checks are off.
// So after every TIMEOUT the worker's event loop is pinged on the control
// channel; a pong within --event-loop-timeout means it is merely slow on
// async work and keeps serving, silence means it is wedged and is replaced
// make-before-break: out of routing at once, killed when its replacement
// is ready (or failed to boot), its other in-flight requests get 502.

// evTimeout: a request to w timed out (delivered by Pool.Timeouts; tests
// send it as an event).
type evTimeout struct{ w *upstream.Worker }

// onTimeout probes the worker a request timed out on.
func (m *Manager) onTimeout(w *upstream.Worker) {
	if m.s.opts.EventLoopTimeout <= 0 {
		return
	}
	for _, p := range m.ready {
		if p.worker == w && p.probeAt.IsZero() {
			now := m.now()
			p.pingSent++
			p.probePing = p.pingSent
			p.probeAt = now
			p.send("ping "+strconv.FormatUint(p.pingSent, 10), now.Add(m.s.opts.EventLoopTimeout))
			return
		}
	}
}

// checkWedged replaces p when its wedge probe went unanswered; it reports
// whether p was taken out.
func (m *Manager) checkWedged(p *process, now time.Time) bool {
	if p.probeAt.IsZero() || now.Sub(p.probeAt) < m.s.opts.EventLoopTimeout {
		return false
	}
	p.probeAt = time.Time{}
	m.log.Warn().Int("pid", p.pid).Uint64("worker", p.id).Dur("waited_ms", m.s.opts.EventLoopTimeout).
		Msg("worker's event loop did not answer after a request timed out (busy in synchronous code); replacing it")
	m.ready = remove(m.ready, p)
	m.stopping = append(m.stopping, p)
	p.stopping, p.stopReason = true, ReasonWedged
	p.worker.Drain()
	m.lastStop = ReasonWedged
	m.restarts++
	m.recordCrash()
	if m.closed || m.crashLooping() {
		p.kill()
		return true
	}
	m.spawn(p)
	return true
}
