package lifecycle

import (
	"strconv"
	"time"
)

// tick applies every time-based rule: health checks, make-before-break
// recycling at workerMaxDuration, idle stops (confirmed by a ping so a
// background task reported just before is never missed), and terminating
// drained workers whose background tasks ended or ran out of time. It runs
// after every event and when the timer fires; it is cheap and idempotent.
func (m *Manager) tick() {
	now := m.now()
	m.checkResources(now)
	m.ensureMin()
	if m.deferredNudge && !now.Before(m.bootRetryAt) {
		m.deferredNudge = false
		if m.pool.Waiting() > 0 {
			m.scale()
		}
	}
	for _, p := range append([]*process(nil), m.ready...) {
		if m.checkWedged(p, now) || m.checkHealth(p, now) {
			continue // replaced
		}
		if m.cfg.WorkerMaxDuration > 0 && !m.closed && !m.replacing[p] &&
			now.Sub(p.started) >= m.cfg.WorkerMaxDuration && !now.Before(p.recycleAfter) {
			m.log.Info().Int("pid", p.pid).Uint64("worker", p.id).Msg("worker reached its max duration; starting its replacement")
			m.spawn(p)
		}
		m.checkIdle(p, now)
	}
	for _, p := range m.stopping {
		if p.drained && !p.terminated &&
			(p.bgTasks == 0 || !m.cfg.BackgroundTaskKeepsAlive || now.Sub(p.worker.LastActive()) >= m.cfg.BackgroundTaskTimeout) {
			m.terminate(p)
		}
	}
}

// checkHealth pings p on schedule and replaces it after too many
// unanswered pings. It reports whether p was taken out.
func (m *Manager) checkHealth(p *process, now time.Time) bool {
	if !p.pingAt.IsZero() && now.Sub(p.pingAt) >= m.cfg.HealthCheckTimeout {
		p.pingAt = time.Time{}
		if m.cfg.HealthCheckInterval > 0 {
			p.healthFails++
			m.log.Warn().Int("pid", p.pid).Uint64("worker", p.id).Int("failures", p.healthFails).Msg("health check timed out")
			if p.healthFails >= m.cfg.HealthCheckMaxFailures {
				if h := m.s.hooks.WorkerUnhealthy; h != nil {
					m.s.callHook(func() { h(m.fn.Name, p.pid, p.healthFails) })
				}
				m.lastStop = ReasonHealth
				m.stopProcess(p, ReasonHealth, true)
				return true
			}
		}
	}
	if m.cfg.HealthCheckInterval > 0 && p.pingAt.IsZero() && now.Sub(p.lastPing) >= m.cfg.HealthCheckInterval {
		m.ping(p, now)
	}
	return false
}

// checkIdle stops p once it has had nothing in flight for idleTimeout, never
// going below minWorkers and never while background tasks keep it alive.
func (m *Manager) checkIdle(p *process, now time.Time) {
	if m.cfg.IdleTimeout <= 0 || m.closed || len(m.ready) <= m.cfg.MinWorkers || m.busy(p) {
		return
	}
	last := p.worker.LastActive()
	idleFor := now.Sub(last)
	if idleFor < m.cfg.IdleTimeout {
		return
	}
	if p.bgTasks > 0 {
		if m.cfg.BackgroundTaskKeepsAlive && idleFor < m.cfg.BackgroundTaskTimeout {
			return
		}
		m.log.Warn().Int("pid", p.pid).Uint64("worker", p.id).Int("tasks", p.bgTasks).Msg("background tasks outlived backgroundTaskTimeout")
		m.stopProcess(p, ReasonBackground, false)
		return
	}
	if p.idleConfirmed != last.UnixNano() {
		// Confirm over the control channel: its pong is ordered after any
		// "bg" message the worker sent before it.
		if p.pingAt.IsZero() {
			m.ping(p, now)
		}
		return
	}
	m.stopProcess(p, ReasonIdle, false)
}

// busy reports work that keeps p from its idle timeout: requests in
// flight, and open WebSockets unless websocketKeepsAlive is off.
func (m *Manager) busy(p *process) bool {
	return p.worker.InFlight() > 0 || (m.cfg.WebSocketKeepsAlive && p.worker.WebSockets() > 0)
}

func (m *Manager) ping(p *process, now time.Time) {
	p.pingSent++
	p.healthPing = p.pingSent
	p.pingAt = now
	p.lastPing = now
	p.send("ping "+strconv.FormatUint(p.pingSent, 10), now.Add(m.cfg.HealthCheckTimeout))
}

// armTimer sets the timer to the earliest moment a rule could change state.
func (m *Manager) armTimer() {
	now := m.now()
	var next time.Time
	due := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if !t.After(now) {
			t = now.Add(time.Millisecond) // already due: re-check right after
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if m.crashLooping() {
		due(m.crashLoopUntil)
	}
	if (m.total() < m.cfg.MinWorkers || m.deferredNudge) && m.bootRetryAt.After(now) {
		due(m.bootRetryAt)
	}
	for _, p := range m.ready {
		if !p.probeAt.IsZero() {
			due(p.probeAt.Add(m.s.opts.EventLoopTimeout))
		}
		if !p.pingAt.IsZero() {
			due(p.pingAt.Add(m.cfg.HealthCheckTimeout))
		} else if m.cfg.HealthCheckInterval > 0 {
			due(p.lastPing.Add(m.cfg.HealthCheckInterval))
		}
		if m.cfg.WorkerMaxDuration > 0 && !m.replacing[p] {
			t := p.started.Add(m.cfg.WorkerMaxDuration)
			if p.recycleAfter.After(t) {
				t = p.recycleAfter
			}
			due(t)
		}
		if m.cfg.IdleTimeout > 0 && len(m.ready) > m.cfg.MinWorkers {
			idleAt := p.worker.LastActive().Add(m.cfg.IdleTimeout)
			switch {
			case m.busy(p):
				due(now.Add(m.cfg.IdleTimeout))
			case p.bgTasks > 0 && m.cfg.BackgroundTaskKeepsAlive:
				// Kept alive until backgroundTaskTimeout (the end of its
				// tasks is an event).
				if bgAt := p.worker.LastActive().Add(m.cfg.BackgroundTaskTimeout); bgAt.After(idleAt) {
					idleAt = bgAt
				}
				due(idleAt)
			case !p.pingAt.IsZero() && !idleAt.After(now):
				// Idle, waiting for the confirming pong (an event) or
				// for the ping's timeout (armed above).
			default:
				due(idleAt)
			}
		}
	}
	if m.sampling() && len(m.ready)+len(m.stopping) > 0 {
		due(m.nextSample)
	}
	for _, p := range m.stopping {
		if p.drained && !p.terminated && p.bgTasks > 0 {
			due(p.worker.LastActive().Add(m.cfg.BackgroundTaskTimeout))
		}
	}
	if next.IsZero() {
		m.timer.Stop()
		return
	}
	m.timer.Reset(next.Sub(now))
}
