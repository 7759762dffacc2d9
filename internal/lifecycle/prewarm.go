package lifecycle

import (
	"sort"
	"sync/atomic"
	"time"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// prewarm keeps --prewarm-pool pre-booted workers (prewarmproc.go) for each
// of the --prewarm-classes permission classes (prewarmclass.go) most
// functions have. One goroutine, run, owns every pooled process: a cold
// start asks it for one (take: a channel round trip, no lock), a reload
// tells it the new classes, and it refills in the background, one boot at
// a time so that refills never crowd out the workers requests wait for.
// A pooled process is single-use: taken, it becomes one function's worker
// for good; a class dropped at a reload, and every pooled process at
// shutdown, is killed.
type prewarm struct {
	s          *Supervisor
	size       int
	maxClasses int
	log        zerolog.Logger

	reqs chan any
	done chan struct{} // closed when run has ended

	idle       atomic.Int64 // pooled processes waiting, for the gauge and /health
	nClasses   atomic.Int64 // classes with a pool
	refillSum  atomic.Int64 // nanoseconds of successful boots
	refillDone atomic.Int64 // successful boots

	// Owned by run.
	classes map[string]*classPool
	booting int // boots in flight (at most one)
	// assigning: taken processes still becoming their function's worker
	assigning int
	failures  int       // boots failed in a row
	retryAt   time.Time // no boot before then after a failure
	stopped   bool
	stopAck   chan struct{}

	// onRequest, when set (unit tests only), runs before a request is
	// handled: tests make it panic.
	onRequest func(req any)
}

// classPool is one class's waiting processes.
type classPool struct {
	class     *poolClass
	idle      []*pooledProc
	booting   int
	functions int // functions of the layout in this class: the ranking
}

type prewarmTake struct {
	key   string
	reply chan takeResult
}

type takeResult struct {
	pp     *pooledProc
	reason string // miss: "empty" or "class"
}

// prewarmAssigned: a taken process is ready (or failed); refills wait for
// it so that a boot does not compete for the CPU with the cold start it
// would slow down.
type prewarmAssigned struct{}

type prewarmBooted struct {
	key string
	pp  *pooledProc
	err error
	dur time.Duration
}

type prewarmClasses struct{ specs map[string]*launchSpec }

type prewarmStop struct{ reply chan struct{} }

// prewarmNudge: the backoff after a failed boot is over, or a budget
// slot freed.
type prewarmNudge struct{}

// prewarmEvict: the budget needs the slot of an idle pre-booted worker,
// preferably not of class avoid.
type prewarmEvict struct{ avoid string }

// Miss reasons, the edgeway_prewarm_misses_total label.
const (
	missEmpty   = "empty"   // its class's pool had none waiting
	missClass   = "class"   // its class has no pool (--prewarm-classes)
	missRefused = "refused" // it cannot run in a pre-booted worker (debug log says why)
)

var (
	prewarmHits        = metrics.NewCounter(`edgeway_prewarm_hits_total`)
	prewarmMisses      = map[string]*metrics.Counter{}
	prewarmRefill      = metrics.NewPrometheusHistogram(`edgeway_prewarm_refill_duration_seconds`)
	prewarmBootFailing = metrics.NewCounter(`edgeway_prewarm_boot_failures_total`)
	prewarmCurrent     atomic.Pointer[prewarm] // the gauges read the live pool
)

func init() {
	for _, r := range []string{missEmpty, missClass, missRefused} {
		prewarmMisses[r] = metrics.NewCounter(`edgeway_prewarm_misses_total{reason="` + r + `"}`)
	}
	metrics.NewGauge(`edgeway_prewarm_idle`, func() float64 {
		if p := prewarmCurrent.Load(); p != nil {
			return float64(p.idle.Load())
		}
		return 0
	})
}

// newPrewarm starts the pool's goroutine; nil when --prewarm-pool is 0.
func newPrewarm(s *Supervisor, specs map[string]*launchSpec) *prewarm {
	if s.opts.PrewarmPool <= 0 || s.opts.Inspect != "" {
		return nil
	}
	p := &prewarm{s: s, size: s.opts.PrewarmPool, maxClasses: max(s.opts.PrewarmClasses, 1), log: s.log.With().Str("function", "(prewarm)").Logger(),
		reqs: make(chan any), done: make(chan struct{}), classes: map[string]*classPool{}}
	prewarmCurrent.Store(p)
	p.setClasses(specs)
	go p.run()
	return p
}

// PrewarmStatus is the pool's state for /health.
type PrewarmStatus struct {
	Size    int    `json:"size"`    // --prewarm-pool per class
	Classes int    `json:"classes"` // classes with a pool
	Idle    int64  `json:"idle"`    // pre-booted workers waiting now
	Hits    uint64 `json:"hits"`
	Misses  uint64 `json:"misses"`
	// RefillSeconds is the mean time to boot one pre-booted worker.
	RefillSeconds float64 `json:"refill_seconds"`
}

// run is the pool's owner loop; it survives panics (each is logged and
// counted, and the loop goes on with its state).
func (p *prewarm) run() {
	defer close(p.done)
	for !p.serve() {
	}
}

// serve handles requests until the pool has stopped (true) or a panic
// outside a request's handling (false: run calls it again).
func (p *prewarm) serve() (finished bool) {
	defer func() {
		if v := recover(); v != nil {
			observe.Recovered(p.log, observe.PanicLifecycle, v)
		}
	}()
	p.fill() // the first boot, and after a panic the next one
	for req := range p.reqs {
		p.handle(req)
		if p.stopped && p.booting == 0 {
			if p.stopAck != nil {
				close(p.stopAck)
			}
			return true
		}
		p.fill()
	}
	return true
}

// handle serves one request. A panic is recovered here and the request
// still answered (a take as a miss, a stop as stopped), so that nobody
// waits forever on a reply.
func (p *prewarm) handle(req any) {
	defer func() {
		if v := recover(); v != nil {
			observe.Recovered(p.log, observe.PanicLifecycle, v)
			switch r := req.(type) {
			case prewarmTake:
				select {
				case r.reply <- takeResult{reason: missEmpty}:
				default: // answered before the panic
				}
			case prewarmStop:
				p.stopped = true
				p.stopAck = r.reply
			}
		}
	}()
	if p.onRequest != nil {
		p.onRequest(req)
	}
	switch r := req.(type) {
	case prewarmTake:
		r.reply <- p.take(r.key)
	case prewarmBooted:
		p.booted(r)
	case prewarmClasses:
		p.setClasses(r.specs)
	case prewarmStop:
		p.stop()
		p.stopAck = r.reply
	case prewarmNudge:
	case prewarmEvict:
		p.evict(r.avoid)
	case prewarmAssigned:
		p.assigning--
	}
}

// take hands out a waiting process of class key; processes that died
// while waiting are dropped.
func (p *prewarm) take(key string) takeResult {
	cp := p.classes[key]
	if cp == nil || p.stopped {
		return takeResult{reason: missClass}
	}
	for len(cp.idle) > 0 {
		pp := cp.idle[0]
		cp.idle = cp.idle[1:]
		p.idle.Add(-1)
		select {
		case <-pp.p.exited:
			p.log.Warn().Int("pid", pp.p.pid).Str("exit", exitString(pp.p.exitErr)).Msg("a pre-booted worker died while waiting")
			continue
		default:
		}
		p.assigning++
		close(pp.handed) // its slot: the function's manager took one for it
		return takeResult{pp: pp}
	}
	return takeResult{reason: missEmpty}
}

// booted stores a finished boot, or kills it when its class is gone.
func (p *prewarm) booted(r prewarmBooted) {
	p.booting--
	cp := p.classes[r.key]
	if cp != nil {
		cp.booting--
	}
	if r.err != nil {
		p.budget().releaseSpare() // a failed boot leaves no process
		prewarmBootFailing.Inc()
		// Back off (1 s doubling up to a minute): a Deno that cannot boot
		// must not be respawned in a tight loop.
		p.failures++
		wait := time.Second << min(p.failures-1, 6)
		p.retryAt = time.Now().Add(wait)
		time.AfterFunc(wait, func() {
			select {
			case p.reqs <- prewarmNudge{}:
			case <-p.done:
			}
		})
		p.log.Error().Err(r.err).Dur("retry_in", wait).Msg("a pre-booted worker failed to boot; cold starts of its class spawn fresh until one boots")
		return
	}
	p.failures = 0
	p.holdSlot(r.pp)
	prewarmRefill.Update(r.dur.Seconds())
	p.refillSum.Add(int64(r.dur))
	p.refillDone.Add(1)
	if cp == nil || p.stopped || r.pp.class.key != r.key {
		r.pp.p.kill()
		return
	}
	cp.idle = append(cp.idle, r.pp)
	n := p.idle.Add(1)
	p.log.Debug().Int("pid", r.pp.p.pid).Int64("idle", n).Dur("boot_ms", r.dur).Msg("pre-booted worker waiting")
}

// setClasses keeps a pool for the maxClasses classes with the most
// functions; processes of a class no longer kept are killed.
func (p *prewarm) setClasses(specs map[string]*launchSpec) {
	count := map[string]*classPool{}
	for _, spec := range specs {
		c := spec.pool.class
		if c == nil {
			continue
		}
		cp := count[c.key]
		if cp == nil {
			cp = &classPool{class: c}
			count[c.key] = cp
		}
		cp.functions++
	}
	ranked := make([]*classPool, 0, len(count))
	for _, cp := range count {
		ranked = append(ranked, cp)
	}
	sort.Slice(ranked, func(i, j int) bool {
		if ranked[i].functions != ranked[j].functions {
			return ranked[i].functions > ranked[j].functions
		}
		return ranked[i].class.key < ranked[j].class.key
	})
	if len(ranked) > p.maxClasses {
		ranked = ranked[:p.maxClasses]
	}
	next := make(map[string]*classPool, len(ranked))
	for _, cp := range ranked {
		if old := p.classes[cp.class.key]; old != nil {
			old.functions = cp.functions
			cp = old
		}
		next[cp.class.key] = cp
	}
	for key, old := range p.classes {
		if next[key] == nil {
			p.killIdle(old)
		}
	}
	p.classes = next
	p.nClasses.Store(int64(len(next)))
	p.log.Debug().Int("classes", len(next)).Int("size", p.size).Msg("prewarm pool classes")
}

func (p *prewarm) killIdle(cp *classPool) {
	for _, pp := range cp.idle {
		pp.p.kill()
		p.idle.Add(-1)
	}
	cp.idle = nil
}

func (p *prewarm) stop() {
	p.stopped = true
	for _, cp := range p.classes {
		p.killIdle(cp)
	}
}

// fill starts one boot for the first class (most functions first) below
// its size, unless one is in flight.
func (p *prewarm) fill() {
	if p.stopped || p.booting > 0 || p.assigning > 0 || time.Now().Before(p.retryAt) {
		return
	}
	var pick *classPool
	for _, cp := range p.classes {
		if len(cp.idle)+cp.booting >= p.size {
			continue
		}
		if pick == nil || cp.functions > pick.functions || (cp.functions == pick.functions && cp.class.key < pick.class.key) {
			pick = cp
		}
	}
	if pick == nil || !p.budget().takeSpare() {
		return // full pools, or no free slot of --max-workers-total
	}
	p.booting++
	pick.booting++
	c, id := pick.class, p.s.nextID.Add(1)
	goGuarded(p.log, observe.PanicLifecycle, func() {
		t := time.Now()
		pp, err := bootPooled(p.s, c, id, p.log)
		p.reqs <- prewarmBooted{key: c.key, pp: pp, err: err, dur: time.Since(t)}
	}, func() {
		p.reqs <- prewarmBooted{key: c.key, err: errStartPanicked}
	})
}

// get asks the pool for a process of spec's class; the second result is
// the miss reason when there is none.
func (p *prewarm) get(spec *launchSpec) (*pooledProc, string) {
	if p == nil {
		return nil, missRefused
	}
	if spec.pool.class == nil {
		prewarmMisses[missRefused].Inc()
		return nil, missRefused
	}
	reply := make(chan takeResult, 1)
	select {
	case p.reqs <- prewarmTake{key: spec.pool.class.key, reply: reply}:
	case <-p.done:
		return nil, missClass
	}
	r := <-reply
	if r.pp == nil {
		prewarmMisses[r.reason].Inc()
		return nil, r.reason
	}
	prewarmHits.Inc()
	return r.pp, ""
}

// assigned tells the pool a taken process is ready or gone.
func (p *prewarm) assigned() {
	select {
	case p.reqs <- prewarmAssigned{}:
	case <-p.done:
	}
}

// assignedWhenAnswered tells the pool a taken process is ready once the
// request that waited for it is answered, it exits, or wait has passed:
// the refill's boot (about 20 ms of CPU on several threads) would
// otherwise compete with the new worker's first request, its own slowest
// (measured on 2 cores: hono's first answer 5.8 -> 3.8 ms at the median,
// a small function's worst first answer 32 -> 7 ms).
func (p *prewarm) assignedWhenAnswered(answered, exited <-chan struct{}, wait time.Duration) {
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-answered:
		case <-exited:
		case <-t.C:
		}
		t.Stop()
	}
	p.assigned()
}

// update gives the pool a reload's classes.
func (p *prewarm) update(specs map[string]*launchSpec) {
	if p == nil {
		return
	}
	select {
	case p.reqs <- prewarmClasses{specs}:
	case <-p.done:
	}
}

// shutdown kills every pooled process and waits for boots in flight.
func (p *prewarm) shutdown() {
	if p == nil {
		return
	}
	reply := make(chan struct{})
	select {
	case p.reqs <- prewarmStop{reply}:
		<-reply
	case <-p.done:
	}
	<-p.done
}

// status reads the pool's counters for /health.
func (p *prewarm) status() *PrewarmStatus {
	if p == nil {
		return nil
	}
	st := &PrewarmStatus{Size: p.size, Classes: int(p.nClasses.Load()), Idle: p.idle.Load(), Hits: prewarmHits.Get()}
	for _, c := range prewarmMisses {
		st.Misses += c.Get()
	}
	if n := p.refillDone.Load(); n > 0 {
		st.RefillSeconds = time.Duration(p.refillSum.Load() / n).Seconds()
	}
	return st
}

// budget is the gateway's worker budget (nil: unlimited, or a unit
// test's pool without a supervisor).
func (p *prewarm) budget() *Budget {
	if p.s == nil {
		return nil
	}
	return p.s.budget
}

// holdSlot gives pp's budget slot back once: when the process dies
// (killed, or on its own while it waits) or when take hands it to a
// function.
func (p *prewarm) holdSlot(pp *pooledProc) {
	pp.handed = make(chan struct{})
	b := p.budget()
	go func() {
		select {
		case <-pp.p.exited:
		case <-pp.handed:
		}
		b.releaseSpare()
	}()
}

// evictSpare (for the budget) asks run to stop an idle pre-booted worker;
// false when none waits. It never blocks: the budget's lock is held.
func (p *prewarm) evictSpare(avoid string) bool {
	if p.idle.Load() <= 0 {
		return false
	}
	go func() {
		select {
		case p.reqs <- prewarmEvict{avoid}:
		case <-p.done:
			p.budget().evictionDeclined()
		}
	}()
	return true
}

// slotFreed (for the budget) nudges run to refill.
func (p *prewarm) slotFreed() {
	select {
	case p.reqs <- prewarmNudge{}:
	case <-p.done:
	}
}

// evict kills the oldest idle pre-booted worker of a class other than
// avoid, else of avoid; its slot comes back when it has exited. With none
// waiting (all taken meanwhile) the budget is told to look elsewhere.
func (p *prewarm) evict(avoid string) {
	var pp *pooledProc
	for pp == nil {
		var pick *classPool
		for key, cp := range p.classes {
			if len(cp.idle) == 0 {
				continue
			}
			if pick == nil || (pick.class.key == avoid && key != avoid) {
				pick = cp
			}
		}
		if pick == nil {
			p.budget().evictionDeclined()
			return
		}
		pp = pick.idle[0]
		pick.idle = pick.idle[1:]
		p.idle.Add(-1)
		select {
		case <-pp.p.exited: // died while waiting: its slot is already back
			pp = nil
		default:
		}
	}
	budgetEvictions.Inc()
	p.log.Info().Int("pid", pp.p.pid).Int("max_workers_total", p.budget().Max()).
		Msg("stopping an idle pre-booted worker: a function needs its slot of the gateway's worker budget")
	pp.p.kill()
}
