package upstream

import "math"

// pick claims a slot on the least-loaded worker of ws. It starts at a
// rotating index so equal loads spread, takes an idle worker at once, and
// otherwise claims the minimum (retrying if another request raced it). It
// reports whether every worker already had work (a request or an open
// WebSocket), the cue to scale up.
// It returns nil when ws is empty or every worker is at its limit.
//
// While the pool can still grow (fewer ready workers than maxWorkers) the
// limit is one request per worker: a request then waits for a slot or for
// the worker being started, whichever comes first, instead of piling onto a
// busy one. At maxWorkers the limit is maxConcurrency (0 = none).
func (p *Pool) pick(ws []*Worker) (*Worker, bool) {
	n := len(ws)
	if n == 0 {
		return nil, false
	}
	limit := int32(p.opts.MaxConcurrency)
	if n < p.opts.MaxWorkers {
		limit = 1
	}
	for attempt := 0; attempt < n+1; attempt++ {
		start := int(p.rr.Add(1) % uint32(n))
		var best *Worker
		bestLoad := int32(math.MaxInt32)
		for i := 0; i < n; i++ {
			w := ws[(start+i)%n]
			if w.gone.Load() {
				continue // exited; the lifecycle goroutine will drop it
			}
			inflight := w.inflight.Load()
			if limit > 0 && inflight >= limit {
				continue
			}
			// Open WebSockets weigh on the worker too, but only requests
			// count against the limit.
			load := inflight + w.websockets.Load()
			if load == 0 && w.inflight.CompareAndSwap(0, 1) {
				return w, false
			}
			if load < bestLoad {
				best, bestLoad = w, load
			}
		}
		if best == nil {
			return nil, true
		}
		if best.tryClaim(limit) {
			return best, true
		}
	}
	return nil, true
}

// pickWebSocket claims a WebSocket slot on the least-loaded worker below
// the per-worker WebSocket cap, or returns nil.
func (p *Pool) pickWebSocket(ws []*Worker) *Worker {
	limit := int32(p.opts.MaxWebSockets)
	for attempt := 0; attempt < len(ws)+1; attempt++ {
		var best *Worker
		bestLoad := int32(math.MaxInt32)
		for _, w := range ws {
			if w.gone.Load() || w.draining.Load() {
				continue
			}
			open := w.websockets.Load()
			if limit > 0 && open >= limit {
				continue
			}
			if load := open + w.inflight.Load(); load < bestLoad {
				best, bestLoad = w, load
			}
		}
		if best == nil {
			return nil
		}
		if best.tryClaimWebSocket(limit) {
			return best
		}
	}
	return nil
}
