package lifecycle

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"

	"edgeway.dev/edgeway/internal/upstream"

	"github.com/VictoriaMetrics/metrics"
)

// Budget caps the worker processes of the whole gateway
// (--max-workers-total). Every Manager takes a slot before it starts a
// worker and gives it back when the process is gone. When the budget is
// spent, the least recently used idle worker of any function is stopped to
// make room, and the manager that asked is told when a slot frees; its
// requests wait for it meanwhile (up to their queue or request deadline).
// With no worker idle anywhere nothing frees a slot but a request ending
// elsewhere: the manager publishes Snapshot.NoWorkerSlot, and its requests
// are refused at once (no worker) or queue on its busy workers.
// Replacements (make-before-break) may exceed the cap briefly: refusing
// them would leave a wedged or expiring worker in place.
//
// Pre-booted workers of the prewarm pool hold slots too (spare): the pool
// boots one only into a free slot no manager waits for (takeSpare, never
// by stopping a worker), the slot is given back when the process dies or
// is handed to a function (whose manager took a slot of its own for it),
// and a manager waiting for a slot has an idle pre-booted worker stopped
// before any function's worker.
//
// A nil *Budget is unlimited.
type Budget struct {
	max int

	mu       sync.Mutex
	used     int
	evicting int // evictions asked for and not yet turned into a free slot
	booting  int // slots taken by workers still booting (see booted)
	members  map[*Manager]struct{}
	waiters  []*Manager
	spare    int         // slots held by pre-booted workers
	spares   spareHolder // the prewarm pool, nil when off
}

// spareHolder is the prewarm pool as the budget sees it.
type spareHolder interface {
	// evictSpare asks the pool to stop one idle pre-booted worker, one
	// not of class avoid if it can, and reports whether it has one; the
	// pool calls evictionDeclined when it finds none after all.
	evictSpare(avoid string) bool
	// slotFreed tells the pool a slot may be free for a refill.
	slotFreed()
}

// setSpares tells the budget about the prewarm pool.
func (b *Budget) setSpares(h spareHolder) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.spares = h
	b.mu.Unlock()
}

// takeSpare claims a slot for a pre-booted worker: only a free one that no
// manager waits for. The pool never makes room.
func (b *Budget) takeSpare() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used >= b.max || len(b.waiters) > 0 {
		return false
	}
	b.used++
	b.spare++
	return true
}

// releaseSpare gives back a pre-booted worker's slot.
func (b *Budget) releaseSpare() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.spare = max(b.spare-1, 0)
	b.mu.Unlock()
	b.release()
}

// NewBudget returns a budget of max workers; 0 derives it from the host's
// memory (DefaultMaxWorkersTotal), a negative max is unlimited (nil).
func NewBudget(max int) *Budget {
	if max < 0 {
		return nil
	}
	if max == 0 {
		max = DefaultMaxWorkersTotal()
	}
	b := &Budget{max: max, members: map[*Manager]struct{}{}}
	metrics.GetOrCreateGauge(`edgeway_workers_total_limit`, func() float64 { return float64(b.max) })
	metrics.GetOrCreateGauge(`edgeway_workers_total_used`, func() float64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		return float64(b.used)
	})
	return b
}

// Per-worker memory the default budget plans for, and its floor.
const (
	budgetWorkerMB = 128
	budgetMinimum  = 4
)

// DefaultMaxWorkersTotal is half of the host's memory (MemTotal) divided
// by 128 MiB per worker, at least 4: the other half stays for the gateway,
// the page cache and everything else on the box.
func DefaultMaxWorkersTotal() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 64
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte("MemTotal:")); ok {
			fields := bytes.Fields(rest)
			if len(fields) == 0 {
				break
			}
			kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
			if err != nil {
				break
			}
			return max(int(kb/1024/2/budgetWorkerMB), budgetMinimum)
		}
	}
	return 64
}

// Max is the cap (0 for a nil, unlimited budget).
func (b *Budget) Max() int {
	if b == nil {
		return 0
	}
	return b.max
}

var budgetEvictions = metrics.GetOrCreateCounter(`edgeway_worker_budget_evictions_total`)

func (b *Budget) join(m *Manager) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.members[m] = struct{}{}
	b.mu.Unlock()
}

func (b *Budget) leave(m *Manager) {
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.members, m)
	for i, w := range b.waiters {
		if w == m {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			break
		}
	}
	b.mu.Unlock()
}

// take claims a slot for m, or, when none is left, stops the least
// recently used idle worker anywhere, queues m to be told when a slot frees
// and reports false. blocked then says that no eviction is under way (no
// worker anywhere is idle, none is booting): no slot will free until a
// request ends somewhere. A worker still booting will serve and then be
// idle, so its boot is not counted as blocked.
func (b *Budget) take(m *Manager) (ok, blocked bool) {
	if b == nil {
		return true, false
	}
	b.mu.Lock()
	if b.used < b.max {
		b.used++
		b.booting++
		b.mu.Unlock()
		return true, false
	}
	queued := false
	for _, w := range b.waiters {
		queued = queued || w == m
	}
	if !queued {
		b.waiters = append(b.waiters, m)
	}
	// One eviction per waiting manager at a time: a manager asks again on
	// every nudge, and one stop per request would empty the gateway.
	var victim *Manager
	var w *upstream.Worker
	if b.evicting < len(b.waiters) {
		// An idle pre-booted worker first: it serves nobody yet.
		if b.spare > 0 && b.spares != nil && b.spares.evictSpare(m.poolClassKey()) {
			b.evicting++
		} else if victim, w = b.leastRecentlyUsedIdle(); victim != nil {
			b.evicting++
		}
	}
	blocked = b.evicting == 0 && b.booting == 0
	b.mu.Unlock()
	if victim != nil {
		go victim.send(evEvict{w})
	}
	return false, blocked
}

// evictionDeclined: the worker chosen became busy or went away before its
// manager could stop it.
func (b *Budget) evictionDeclined() {
	b.mu.Lock()
	b.evicting = max(b.evicting-1, 0)
	b.mu.Unlock()
}

// force claims a slot even above the cap (a replacement).
func (b *Budget) force() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.used++
	b.booting++
	b.mu.Unlock()
}

// booted: a worker that took a slot (take or force) finished booting,
// ready or failed.
func (b *Budget) booted() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.booting = max(b.booting-1, 0)
	b.mu.Unlock()
}

// release gives a slot back and wakes the managers waiting for one.
func (b *Budget) release() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.used--
	b.evicting = max(b.evicting-1, 0)
	var waiters []*Manager
	if b.used < b.max {
		waiters, b.waiters = b.waiters, nil
	}
	spares, free := b.spares, b.used < b.max
	b.mu.Unlock()
	if free && len(waiters) == 0 && spares != nil {
		go spares.slotFreed() // the pool may refill into it
	}
	// Every waiter retries: one gets the slot, the others queue again and
	// each makes room by stopping another idle worker.
	for _, m := range waiters {
		go m.send(evBudget{})
	}
}

// leastRecentlyUsedIdle finds, from the managers' published status, the
// running worker with nothing in flight and no open WebSocket that was
// active least recently, among functions above their minWorkers. b.mu is
// held; statuses are read atomically.
func (b *Budget) leastRecentlyUsedIdle() (*Manager, *upstream.Worker) {
	var (
		victim *Manager
		best   *upstream.Worker
		oldest time.Time
	)
	for m := range b.members {
		st := m.status.Load()
		if st == nil || st.Running <= m.cfg.MinWorkers {
			continue
		}
		for i, ws := range st.Workers {
			w := st.refs[i]
			if ws.State != "running" || w.InFlight() > 0 || w.WebSockets() > 0 {
				continue
			}
			if last := w.LastActive(); best == nil || last.Before(oldest) {
				victim, best, oldest = m, w, last
			}
		}
	}
	return victim, best
}

// evEvict asks a manager to stop an idle worker for the budget.
type evEvict struct{ w *upstream.Worker }

// evBudget tells a waiting manager a slot is free.
type evBudget struct{}

// onEvict stops w if it is still running and idle.
func (m *Manager) onEvict(w *upstream.Worker) {
	for _, p := range m.ready {
		if p.worker == w && !m.busy(p) && len(m.ready) > m.cfg.MinWorkers && !m.closed {
			budgetEvictions.Inc()
			m.log.Info().Int("pid", p.pid).Uint64("worker", p.id).Int("max_workers_total", m.s.budget.Max()).
				Msg("stopping the least recently used idle worker: the gateway's worker budget is spent")
			m.stopProcess(p, ReasonBudget, false)
			return
		}
	}
	m.s.budget.evictionDeclined()
}

// poolClassKey is the prewarm class of m's function ("" for none).
func (m *Manager) poolClassKey() string {
	if m == nil || m.spec == nil || m.spec.pool.class == nil {
		return ""
	}
	return m.spec.pool.class.key
}
