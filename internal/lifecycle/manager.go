package lifecycle

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/rs/zerolog"
)

// Stop reasons, as logged and shown in the function's status.
const (
	ReasonIdle        = "idle"
	ReasonMaxDuration = "max duration"
	ReasonCrash       = "crash"
	ReasonMemory      = "memory"
	ReasonHealth      = "health"
	ReasonShutdown    = "shutdown"
	ReasonBackground  = "background task timeout"
	ReasonReload      = "reload"   // replaced by a new version, or removed
	ReasonProtocol    = "protocol" // broke the control protocol
	ReasonWedged      = "wedged"   // its event loop stopped answering after a timeout
	ReasonCPU         = "cpu"      // reached a CPU time limit
	ReasonBudget      = "budget"   // stopped to make room under --max-workers-total
)

// Manager is one function's lifecycle goroutine and its state. Only run
// (and the functions it calls) touch the fields below the channels.
type Manager struct {
	s    *Supervisor
	spec *launchSpec
	fn   *config.Function
	cfg  config.FunctionConfig
	pool *upstream.Pool
	log  zerolog.Logger

	metrics *observe.FunctionMetrics

	events chan any
	stopCh chan stopRequest
	done   chan struct{}
	status atomic.Pointer[statusSnapshot]

	// start launches a worker process; tests replace it with a fake.
	start func(id uint64) (*process, error)
	now   func() time.Time

	ready          []*process // routable, in the published snapshot
	stopping       []*process // drained or draining, not yet exited
	starting       int
	replacing      map[*process]bool // old workers whose replacement is starting
	crashes        []time.Time
	bootFailures   uint64
	crashLoopUntil time.Time
	bootRetryAt    time.Time // no boot starts before then after a failed boot
	deferredNudge  bool      // a request asked for a worker during the boot backoff
	restarts       uint64
	lastStop       string
	closed         bool
	// stopReplies are closed when the function has stopped: a stop (at
	// shutdown) may follow a retire (a reload) that is still draining,
	// and both callers wait.
	stopReplies []chan struct{}

	// warmup makes run start a worker at once and report the first boot's
	// outcome on warmDone (a reload's make-before-break).
	warmup   bool
	warmDone chan struct{}
	warmErr  error
	timer    *time.Timer

	begun  bool      // run's first steps (eager spawns) are done
	panics int       // recovered so far
	fault  func(any) // test hook: called with every event before it is handled

	wasReady bool // had a ready worker at the last publish (hooks.go)
	retired  bool // stopped for a reload: going cold is no event

	budgetWait bool // asked the gateway's budget for a slot; told by evBudget
	// budgetBlocked: the budget's last answer was no slot and no idle
	// worker to evict; published as Snapshot.NoWorkerSlot.
	budgetBlocked bool
	nextSample    time.Time                         // when workers' resources are read next
	sample        func(*process) (procUsage, error) // test hook replacing readUsage
}

type evSpawned struct {
	p        *process
	err      error
	replaces *process
	cold     bool   // started while the function had no ready worker
	source   string // sourcePool or sourceSpawn
	at       time.Time
}

type evExited struct{ p *process }

type evDrained struct{ p *process }

// evViolation: a worker sent an oversized or unknown control message.
type evViolation struct {
	p   *process
	err error
}

type evControl struct {
	p    *process
	kind string // "bg" or "pong"
	id   uint64
	n    int
}

func newManager(s *Supervisor, spec *launchSpec, metrics *observe.FunctionMetrics) *Manager {
	fn := spec.fn
	m := &Manager{
		s:    s,
		spec: spec,
		fn:   fn,
		cfg:  fn.Config,
		pool: upstream.NewPool(upstream.PoolOptions{
			MaxWorkers:     fn.Config.MaxWorkers,
			MaxConcurrency: fn.Config.MaxConcurrency,
			MaxWebSockets:  fn.Config.MaxWebSockets,
			MaxQueue:       fn.Config.MaxQueue,
			QueueTimeout:   fn.Config.QueueTimeout,
			Pipeline:       pipelineOptions(s.opts),
		}),
		log:       s.log.With().Str("function", fn.Name).Logger(),
		events:    make(chan any, 16),
		stopCh:    make(chan stopRequest),
		done:      make(chan struct{}),
		replacing: map[*process]bool{},
		now:       time.Now,
		warmDone:  make(chan struct{}),
	}
	m.start = func(id uint64) (*process, error) { return startProcess(s, spec, m.pool, id, m.log) }
	m.metrics = metrics
	m.publish()
	return m
}

// pipelineOptions turns the --upstream-pipeline* flags into pool settings.
func pipelineOptions(o config.Options) upstream.PipelineOptions {
	if o.Pipelining == "off" {
		return upstream.PipelineOptions{}
	}
	return upstream.PipelineOptions{Conns: o.PipelineConns, Depth: o.PipelineDepth, MaxAge: o.PipelineMaxAge, Slow: o.PipelineSlow, SlowCooldown: o.PipelineSlowCooldown}
}

// send delivers an event unless the manager has finished.
func (m *Manager) send(ev any) {
	select {
	case m.events <- ev:
	case <-m.done:
	}
}

// stop closes the function and waits until every worker has exited.
func (m *Manager) stop() { m.stopFor(ReasonShutdown) }

// retire stops a function replaced by a new version or removed: its
// workers drain as for a recycle, keeping open WebSockets up to
// websocketDrainTimeout.
func (m *Manager) retire() { m.stopFor(ReasonReload) }

type stopRequest struct {
	reply  chan struct{}
	reason string
}

func (m *Manager) stopFor(reason string) {
	reply := make(chan struct{})
	select {
	case m.stopCh <- stopRequest{reply, reason}:
		<-reply
	case <-m.done:
	}
}

func (m *Manager) run() {
	defer close(m.done)
	m.s.budget.join(m)
	defer m.s.budget.leave(m)
	m.timer = time.NewTimer(time.Hour)
	m.timer.Stop()
	for !m.loop() {
		// A panic: the state is as the panic left it. Publish it (the last
		// snapshot kept serving meanwhile) and go on from there, after a
		// pause so a panic on every turn cannot spin.
		time.Sleep(panicPause)
	}
}

// loop runs the manager until the function has stopped (true). A panic is
// recovered, logged and counted, and reported as false.
func (m *Manager) loop() (finished bool) {
	defer func() {
		if r := recover(); r != nil {
			m.recovered(r)
			finished = false
		}
	}()
	if !m.begun {
		m.begun = true
		if m.cfg.EagerSpawn || m.warmup {
			for m.total() < max(m.cfg.MinWorkers, 1) && m.spawn(nil) {
			}
		}
		m.ensureMin()
	}
	m.publish()
	m.armTimer()
	for {
		select {
		case <-m.pool.Nudges():
			m.scale()
		case w := <-m.pool.Timeouts():
			m.onTimeout(w)
		case ev := <-m.events:
			m.handle(ev)
		case req := <-m.stopCh:
			m.beginShutdown(req.reply, req.reason)
		case <-m.timer.C:
		}
		m.tick()
		if m.closed && len(m.ready) == 0 && len(m.stopping) == 0 && m.starting == 0 {
			pipelined, exclusive := m.pool.Exchanges()
			m.log.Info().Uint64("pipelined", pipelined).Uint64("exclusive", exclusive).Uint64("restarts", m.restarts).Msg("function stopped")
			m.publish()
			for _, r := range m.stopReplies {
				close(r)
			}
			return true
		}
		m.publish()
		m.armTimer()
	}
}

func (m *Manager) total() int { return len(m.ready) + m.starting }

func (m *Manager) crashLooping() bool {
	return !m.crashLoopUntil.IsZero() && m.now().Before(m.crashLoopUntil)
}

// spawn starts a worker in the background; replaces names the worker it is
// to replace once ready (make-before-break), or nil.
//
// A new worker (not a replacement) needs a slot of the gateway's budget;
// without one spawn reports false and the manager is told when one frees.
func (m *Manager) spawn(replaces *process) bool {
	if replaces != nil || m.warmup {
		// A replacement, or a reload's first worker (the old version's
		// workers give their slots back once it is ready).
		m.s.budget.force()
	} else if ok, blocked := m.s.budget.take(m); !ok {
		m.budgetBlocked = blocked
		if !m.budgetWait {
			m.budgetWait = true
			m.log.Warn().Int("max_workers_total", m.s.budget.Max()).Bool("every_worker_busy", blocked).Msg("the gateway's worker budget is spent; waiting for a slot")
		}
		return false
	}
	m.budgetWait, m.budgetBlocked = false, false
	m.starting++
	id := m.s.nextID.Add(1)
	ev := m.log.Info().Uint64("worker", id).Int("running", len(m.ready)).Int("starting", m.starting)
	if replaces != nil {
		m.replacing[replaces] = true
		ev = ev.Int("replaces_pid", replaces.pid)
	}
	ev.Msg("starting worker")
	m.metrics.Spawns.Inc()
	cold, at := len(m.ready) == 0 && replaces == nil, time.Now()
	// A panic while starting is a failed boot: the manager's count of
	// starting workers must come down, or the function waits forever.
	goGuarded(m.log, observe.PanicLifecycle, func() {
		p, source, err := m.startWorker(id, cold)
		m.send(evSpawned{p: p, err: err, replaces: replaces, cold: cold, at: at, source: source})
	}, func() {
		m.send(evSpawned{err: errStartPanicked, replaces: replaces, cold: cold, at: at})
	})
	return true
}

// signalWarm reports the first boot's outcome to waitWarm.
func (m *Manager) signalWarm(err error) {
	if !m.warmup {
		return
	}
	m.warmup = false
	m.warmErr = err
	close(m.warmDone)
}

// waitWarm waits for the first boot of a warmup manager.
func (m *Manager) waitWarm() error {
	select {
	case <-m.warmDone:
		return m.warmErr
	case <-m.done:
		return errors.New("function stopped before its first worker was ready")
	}
}

// scale answers a nudge from a request that found no free worker.
//
// Right after a failed boot it waits --boot-retry-backoff instead: requests
// that waited for that boot were answered BOOT_ERROR, and the ones that
// keep arriving must not each start another doomed process. The nudge is
// remembered and answered when the backoff ends (tick).
func (m *Manager) scale() {
	if m.closed || m.crashLooping() || m.starting > 0 || m.total() >= m.cfg.MaxWorkers {
		return
	}
	if m.now().Before(m.bootRetryAt) {
		m.deferredNudge = true
		return
	}
	m.deferredNudge = false
	m.spawn(nil)
}

// ensureMin starts workers up to minWorkers. After a failed boot it waits
// --boot-retry-backoff, so a function that cannot boot is not respawned in
// a tight loop (requests still trigger boots, and get BOOT_ERROR).
func (m *Manager) ensureMin() {
	if m.now().Before(m.bootRetryAt) {
		return
	}
	for !m.closed && !m.crashLooping() && m.total() < m.cfg.MinWorkers && m.spawn(nil) {
	}
}

func (m *Manager) handle(ev any) {
	if m.fault != nil {
		m.fault(ev)
	}
	switch ev := ev.(type) {
	case evSpawned:
		m.onSpawned(ev)
	case evExited:
		m.onExited(ev.p)
	case evDrained:
		m.onDrained(ev.p)
	case evControl:
		m.onControl(ev)
	case evViolation:
		m.onViolation(ev)
	case evTimeout:
		m.onTimeout(ev.w)
	case evEvict:
		m.onEvict(ev.w)
	case evBudget:
		m.budgetWait, m.budgetBlocked = false, false
		m.scale()
	}
}

func (m *Manager) onSpawned(ev evSpawned) {
	m.starting--
	m.s.budget.booted()
	if ev.replaces != nil {
		delete(m.replacing, ev.replaces)
		if ev.replaces.stopReason == ReasonWedged {
			ev.replaces.kill() // its replacement is ready, or failed: either way it goes
		}
	}
	m.signalWarm(ev.err)
	if ev.err != nil {
		m.s.budget.release()
		m.bootFailures++
		m.bootRetryAt = m.now().Add(m.s.opts.BootRetryBackoff)
		m.metrics.BootFailures.Inc()
		// A function that cannot boot is as broken as one that keeps
		// crashing: its failures open the crash-loop breaker too.
		m.recordCrash()
		if ev.replaces != nil {
			ev.replaces.recycleAfter = m.now().Add(m.s.opts.BootTimeout)
		}
		var be *errBoot
		if errors.As(ev.err, &be) {
			// One line: Deno's output was logged as it came (see
			// lineWriter), its error's headline is repeated here.
			e := m.log.Error().Str("reason", be.reason)
			if be.headline != "" {
				e = e.Str("error", be.headline)
			}
			e.Msg("worker failed to boot")
		} else {
			m.log.Error().Err(ev.err).Msg("worker failed to start")
		}
		return
	}
	p := ev.p
	if ev.cold {
		m.metrics.ColdStarts.Inc()
		m.metrics.ColdStart(ev.source).UpdateDuration(ev.at)
		if p.worker != nil {
			p.worker.Cold = upstream.ColdStart{Duration: time.Since(ev.at), Source: ev.source, Answered: p.answered}
		}
	}
	// A panic reading the control connection leaves it in an unknown
	// state: the worker is killed, as for a violation.
	goGuarded(m.log, observe.PanicLifecycle, func() { m.watch(p) }, func() {
		m.send(evViolation{p, errControlPanicked})
	})
	m.baseline(p)
	if m.closed {
		m.stopping = append(m.stopping, p)
		p.stopping, p.stopReason = true, ReasonShutdown
		p.terminate()
		goGuarded(m.log, observe.PanicLifecycle, func() { m.killAfterGrace(p) }, p.kill)
		return
	}
	m.ready = append(m.ready, p)
	m.log.Info().Int("pid", p.pid).Uint64("worker", p.id).Dur("boot_ms", time.Since(p.started)).Int("running", len(m.ready)).Msg("worker ready")
	// The old worker may have crashed meanwhile: it is then gone already.
	if ev.replaces != nil && !ev.replaces.stopping && slices.Contains(m.ready, ev.replaces) {
		m.stopProcess(ev.replaces, ReasonMaxDuration, false)
	}
}

// watch reports the worker's control messages and its exit.
func (m *Manager) watch(p *process) {
	go func() {
		<-p.exited
		m.send(evExited{p})
	}()
	for {
		msg, err := readControl(p.ctlr)
		switch {
		case errors.Is(err, errControlTooLong) || errors.Is(err, errControlUnknown):
			m.send(evViolation{p, err})
			return
		case err != nil:
			return // the connection closed: the exit is reported above
		case msg.kind == ctlReady:
			m.send(evViolation{p, errors.New(`a second "ready"`)})
			return
		case msg.kind == ctlPooled:
			m.send(evViolation{p, errors.New(`"pooled" from a running worker`)})
			return
		}
		m.send(evControl{p: p, kind: msg.kind, id: msg.id, n: msg.n})
	}
}

// onViolation kills a worker that broke the control protocol: whatever sent
// it is not the bootstrap (user code got hold of the connection, or the
// process is corrupt), so nothing it says can be trusted any more. It counts
// as a crash toward the crash loop.
func (m *Manager) onViolation(ev evViolation) {
	p := ev.p
	protocolErrors(m.fn.Name).Inc()
	m.log.Error().Int("pid", p.pid).Uint64("worker", p.id).Str("error", ev.err.Error()).Msg("worker broke the control protocol; killing it")
	if p.stopping {
		p.kill()
		return
	}
	m.stopProcess(p, ReasonProtocol, true)
	m.recordCrash()
}

func (m *Manager) onControl(ev evControl) {
	p := ev.p
	p.bgTasks = ev.n
	if ev.kind == ctlPong && !p.probeAt.IsZero() && ev.id >= p.probePing {
		p.probeAt = time.Time{}
		m.log.Info().Int("pid", p.pid).Uint64("worker", p.id).Msg("worker's event loop answered after a request timed out; keeping it")
	}
	if ev.kind == ctlPong && !p.pingAt.IsZero() && ev.id >= p.healthPing {
		p.pingAt = time.Time{}
		p.healthFails = 0
		if ev.n == 0 && p.worker.InFlight() == 0 {
			p.idleConfirmed = p.worker.LastActive().UnixNano()
		}
	}
}

func (m *Manager) onExited(p *process) {
	m.s.budget.release()
	if p.limitKill == "" && diedOfHeapLimit(p.exitErr) {
		p.limitKill = ReasonMemory
		if p.stopping {
			p.stopReason = ReasonMemory
		}
	}
	if p.worker != nil {
		p.worker.MarkGone(p.limitKill != "")
	}
	if p.ctl != nil {
		p.ctl.Close()
	}
	if p.stopping {
		m.stopping = remove(m.stopping, p)
		m.lastStop = p.stopReason
		m.metrics.Stopped(p.stopReason)
		m.log.Info().Int("pid", p.pid).Uint64("worker", p.id).Str("reason", p.stopReason).Msg("worker stopped")
		m.ensureMin()
		return
	}
	m.ready = remove(m.ready, p)
	reason := ReasonCrash
	if p.limitKill != "" {
		reason = p.limitKill
	}
	m.lastStop = reason
	m.restarts++
	m.metrics.Crashes.Inc()
	m.metrics.Stopped(reason)
	m.log.Warn().Int("pid", p.pid).Uint64("worker", p.id).Str("reason", reason).Str("exit", exitString(p.exitErr)).Msg("worker died")
	m.recordCrash()
	m.ensureMin()
}

func (m *Manager) recordCrash() {
	now := m.now()
	keep := m.crashes[:0]
	for _, t := range m.crashes {
		if now.Sub(t) < m.s.opts.CrashLoopWindow {
			keep = append(keep, t)
		}
	}
	m.crashes = append(keep, now)
	if len(m.crashes) > m.s.opts.CrashLoopThreshold {
		m.crashLoopUntil = now.Add(m.s.opts.CrashLoopCooldown)
		m.crashes = m.crashes[:0]
		m.log.Error().Int("crashes", m.s.opts.CrashLoopThreshold+1).Dur("window_ms", m.s.opts.CrashLoopWindow).Time("until", m.crashLoopUntil).Msg("function is in a crash loop; refusing requests until it cools down")
	}
}

// stopProcess takes p out of routing, lets its in-flight requests finish and
// then terminates it. kill skips the drain (a blocked or broken worker).
func (m *Manager) stopProcess(p *process, reason string, kill bool) {
	m.ready = remove(m.ready, p)
	m.stopping = append(m.stopping, p)
	p.stopping, p.stopReason = true, reason
	if reason != ReasonShutdown && reason != ReasonCrash {
		m.restartsIfReplaced(reason)
	}
	m.log.Info().Int("pid", p.pid).Uint64("worker", p.id).Str("reason", reason).Msg("stopping worker")
	if kill {
		p.kill()
		return
	}
	p.send("beforeunload "+unloadReason(reason), m.now().Add(controlWriteTimeout))
	drained := p.worker.Drain()
	limit := m.cfg.Timeout
	if reason == ReasonShutdown {
		// The server has already given in-flight requests the shutdown
		// grace; the bootstrap still finishes what is left on SIGTERM.
		// A reload must wait instead: requests pipelined on a connection
		// but not yet read by Deno would be dropped by its shutdown.
		limit = 0
	}
	wsDrain := m.webSocketDrain(reason)
	closeTimeout := m.s.opts.WebSocketCloseTimeout
	// After a panic the worker is reported drained all the same: it is
	// terminated rather than left running forever.
	goGuarded(m.log, observe.PanicLifecycle, func() {
		t := time.NewTimer(limit)
		defer t.Stop()
		select {
		case <-drained:
		case <-t.C:
		case <-p.exited:
		}
		// Open WebSockets get their drain time, then a 1001 close, before
		// the process is told to stop.
		if wsDrain <= 0 || !p.worker.WaitWebSockets(wsDrain) {
			p.worker.CloseWebSockets(upstream.CloseGoingAway, closeTimeout)
		}
		m.send(evDrained{p})
	}, func() { m.send(evDrained{p}) })
}

// webSocketDrain is how long a worker stopped for reason keeps its open
// WebSockets before closing them with 1001.
func (m *Manager) webSocketDrain(reason string) time.Duration {
	switch reason {
	case ReasonMaxDuration, ReasonReload:
		return m.cfg.WebSocketDrainTimeout
	}
	return 0
}

func (m *Manager) restartsIfReplaced(reason string) {
	if reason == ReasonMaxDuration || reason == ReasonHealth || reason == ReasonMemory {
		m.restarts++
	}
}

// onDrained terminates a worker once its requests are done; with pending
// background tasks it waits for them, up to backgroundTaskTimeout.
func (m *Manager) onDrained(p *process) {
	p.drained = true
	p.send("drain", m.now().Add(controlWriteTimeout))
	if p.bgTasks > 0 && m.cfg.BackgroundTaskKeepsAlive && p.stopReason != ReasonShutdown &&
		m.now().Sub(p.worker.LastActive()) < m.cfg.BackgroundTaskTimeout {
		return // tick terminates it when the tasks end or time runs out
	}
	m.terminate(p)
}

func (m *Manager) terminate(p *process) {
	if p.terminated {
		return
	}
	p.terminated = true
	p.terminate()
	goGuarded(m.log, observe.PanicLifecycle, func() { m.killAfterGrace(p) }, p.kill)
}

func (m *Manager) killAfterGrace(p *process) {
	t := time.NewTimer(m.s.opts.ShutdownGrace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.kill()
	}
}

func (m *Manager) beginShutdown(reply chan struct{}, reason string) {
	m.closed = true
	m.retired = m.retired || reason == ReasonReload
	m.stopReplies = append(m.stopReplies, reply)
	for _, p := range append([]*process(nil), m.ready...) {
		m.stopProcess(p, reason, false)
	}
	if reason != ReasonShutdown {
		return // workers already draining finish their drain
	}
	// Workers already draining (recycled, idle) get SIGTERM at once too;
	// the bootstrap finishes what is left.
	for _, p := range m.stopping {
		p.worker.CloseWebSockets(upstream.CloseGoingAway, 0)
		m.terminate(p)
	}
}

func remove(list []*process, p *process) []*process {
	for i, q := range list {
		if q == p {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// publish hands the hot path a new snapshot and refreshes the status.
func (m *Manager) publish() {
	ws := make([]*upstream.Worker, 0, len(m.ready))
	for _, p := range m.ready {
		ws = append(ws, p.worker)
	}
	crashUntil := time.Time{}
	if m.crashLooping() {
		crashUntil = m.crashLoopUntil
	}
	retryAt := time.Time{}
	if !m.bootRetryAt.IsZero() && m.now().Before(m.bootRetryAt) {
		retryAt = m.bootRetryAt
	}
	// A new snapshot wakes every waiting request, and each nudges again
	// while the pool can grow: publish only what changed, or the two would
	// loop for as long as a worker boots.
	if cur := m.pool.Load(); !slices.Equal(cur.Workers, ws) || cur.Total != m.total() ||
		cur.BootFailures != m.bootFailures || !cur.CrashLoopUntil.Equal(crashUntil) || cur.Closed != m.closed ||
		cur.NoWorkerSlot != m.budgetBlocked || cur.BudgetWait != m.budgetWait || !cur.BootRetryAt.Equal(retryAt) {
		m.pool.Publish(upstream.Snapshot{
			Workers:        ws,
			Total:          m.total(),
			BootFailures:   m.bootFailures,
			CrashLoopUntil: crashUntil,
			Closed:         m.closed,
			NoWorkerSlot:   m.budgetBlocked,
			BudgetWait:     m.budgetWait,
			BootRetryAt:    retryAt,
		})
	}
	m.status.Store(m.snapshotStatus())
	m.readyEdge()
}
