package lifecycle

// The Manager's side of the prewarm pool: a cold start asks the pool first.

// startWorker starts worker id of m's function: on a cold start from the
// pool when it holds one of the function's class, else fresh. source is
// "pool" or "spawn", for the cold-start histogram and the log.
func (m *Manager) startWorker(id uint64, cold bool) (*process, string, error) {
	pw := m.s.prewarm
	if !cold || pw == nil || m.spec == nil {
		p, err := m.start(id)
		return p, sourceSpawn, err
	}
	pp, miss := pw.get(m.spec)
	if pp == nil {
		ev := m.log.Debug().Uint64("worker", id).Str("miss", miss)
		if miss == missRefused {
			ev = ev.Str("why", m.spec.pool.refusal)
		}
		ev.Msg("cold start spawns a fresh worker, not a pre-booted one")
		p, err := m.start(id)
		return p, sourceSpawn, err
	}
	m.log.Debug().Uint64("worker", id).Int("pid", pp.p.pid).Msg("cold start takes a pre-booted worker")
	p, err := pp.assign(m.s, m.spec, m.pool, id, m.log)
	if err != nil || p == nil {
		pw.assigned()
		return p, sourcePool, err
	}
	p.answered = make(chan struct{})
	go pw.assignedWhenAnswered(p.answered, p.exited, m.s.opts.PrewarmRefillWait)
	return p, sourcePool, err
}

// Cold-start sources.
const (
	sourcePool  = "pool"
	sourceSpawn = "spawn"
)
