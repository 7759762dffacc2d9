package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"

	"edgeway.dev/edgeway/internal/bootstrap"
	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/guard"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/routable"
	"edgeway.dev/edgeway/internal/secure"

	"github.com/rs/zerolog"
)

// function is a served version of a function: the record published to
// the gateway and the Manager behind it, which only lifecycle controls.
type function struct {
	*routable.Function
	m *Manager
}

// table is the published set of functions: byName for the control plane,
// routes (the same records) for Lookup.
type table struct {
	byName map[string]*function
	routes map[string]*routable.Function
}

func newTable(fns map[string]*function) *table {
	t := &table{byName: fns, routes: make(map[string]*routable.Function, len(fns))}
	for name, f := range fns {
		t.routes[name] = f.Function
	}
	return t
}

// Supervisor owns the runtime folder, the spawner and every function's
// Manager. Lookup is safe for concurrent use and lock-free. The set of
// functions is owned by one goroutine, loop (see reload.go), which takes
// start, reload and stop requests with reply channels: a stop never waits
// for a reload's boots, and reloads arriving while one boots are coalesced
// into one.
type Supervisor struct {
	opts          config.Options
	log           zerolog.Logger
	runDir        string
	bootstrapPath string
	spawner       *spawner
	nextID        atomic.Uint64
	budget        *Budget    // --max-workers-total, shared by every Manager
	sandbox       *sandbox   // what default-profile workers may touch
	inspect       *inspector // nil unless --inspect
	hooks         Hooks      // the host program's, set before Start (hooks.go)
	prewarm       *prewarm   // nil when --prewarm-pool is 0

	functions atomic.Pointer[table]
	layout    atomic.Pointer[config.Layout] // the layout last applied
	// reloaded tells the watcher that a reload it did not trigger (SIGHUP)
	// may have changed what lies outside the functions folder.
	reloaded chan struct{}

	requests chan any           // startRequest, reloadRequest, supStopRequest
	booted   chan *reloadRun    // a reload's warm boots have finished
	hups     chan rescanRequest // RequestReload's coalesced requests
	done     chan struct{}      // closed when loop has ended (a stop began)
	stopDone chan struct{}      // closed when Stop has finished

	// Owned by loop.
	prints   map[string]string // content fingerprint per function
	metrics  map[string]*observe.FunctionMetrics
	retiring []*function // replaced or removed versions, draining
	started  bool
	running  atomic.Bool // started, for Ready (read by the gateway)

	// onRequest, when set (unit tests only), runs before loop handles a
	// request: tests make it panic.
	onRequest func(req any)
}

// plan is a layout turned into launch specs, validated as a whole.
type plan struct {
	layout *config.Layout
	specs  map[string]*launchSpec
	prints map[string]string
}

// makePlan resolves environments and permissions for every function of
// layout; any error leaves the running functions untouched.
func makePlan(opts config.Options, layout *config.Layout) (*plan, error) {
	envs, err := buildEnvs(opts, layout, os.Environ())
	if err != nil {
		return nil, err
	}
	profiles, err := secure.ParseProfiles(opts.PermissionProfiles)
	if err != nil {
		return nil, fmt.Errorf("flag --permission-profile: %w", err)
	}
	p := &plan{layout: layout, specs: map[string]*launchSpec{}, prints: map[string]string{}}
	for i := range layout.Functions {
		fn := &layout.Functions[i]
		flags, err := profiles.Resolve(fn.Config.Permissions)
		if err != nil {
			return nil, fmt.Errorf("function %s (%s): %w", fn.Name, fn.Config.PermissionsFrom, err)
		}
		readable := append(append([]string{fn.Dir}, layout.Shared...), fn.StaticFiles...)
		readable = append(readable, mappedReadPaths(fn.Deps, readable)...)
		for _, path := range readable {
			if err := secure.CheckPermissionPath(path); err != nil {
				return nil, fmt.Errorf("function %s: %w", fn.Name, err)
			}
		}
		imap, err := ImportMapJSON(layout, fn)
		if err != nil {
			return nil, err
		}
		spec := &launchSpec{fn: fn, readable: readable, perms: flags, env: envs[fn.Name], importMap: imap, compat: compatProfile(fn.Config.Permissions), nodeServer: mayServeNode(fn, layout.Shared)}
		spec.pool = poolFitFor(opts, spec, layout.Root, layout.Shared)
		p.specs[fn.Name] = spec
		p.prints[fn.Name] = fingerprint(layout, fn, envs[fn.Name], imap)
	}
	return p, nil
}

// NewSupervisor prepares a private runtime folder (mode 0700) holding the
// bootstrap and every worker's sockets, and a Manager per function.
func NewSupervisor(opts config.Options, layout *config.Layout, log zerolog.Logger) (*Supervisor, error) {
	p, err := makePlan(opts, layout)
	if err != nil {
		return nil, err
	}
	RemoveStaleRunDirs(log)
	runDir, err := os.MkdirTemp("", runDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("create runtime folder: %w", err)
	}
	bootstrapPath := filepath.Join(runDir, "bootstrap.js")
	if err := os.WriteFile(bootstrapPath, bootstrap.Script, 0o400); err != nil {
		os.RemoveAll(runDir)
		return nil, fmt.Errorf("write bootstrap: %w", err)
	}
	if err := writeOwner(runDir); err != nil {
		os.RemoveAll(runDir)
		return nil, err
	}
	sp := newSpawner(log)
	sb, err := newSandbox(opts, layout, runDir, sp, log)
	if err != nil {
		os.RemoveAll(runDir)
		return nil, err
	}
	if err := checkSocketPaths(runDir, sb); err != nil {
		os.RemoveAll(runDir)
		return nil, err
	}
	if sb != nil {
		log.Info().Str("tmp", sb.tmp).Str("tmp_setup", sb.setup).Str("npm_cache", sb.npmCache).Strs("sys", sb.sys).Msg("what functions of the default permission profile may touch")
	}
	s := &Supervisor{
		opts:          opts,
		log:           log,
		runDir:        runDir,
		bootstrapPath: bootstrapPath,
		spawner:       sp,
		budget:        NewBudget(opts.MaxWorkersTotal),
		sandbox:       sb,
		inspect:       newInspector(opts),
		prints:        p.prints,
		metrics:       map[string]*observe.FunctionMetrics{},
		reloaded:      make(chan struct{}, 1),
		requests:      make(chan any),
		booted:        make(chan *reloadRun),
		hups:          make(chan rescanRequest, 1),
		done:          make(chan struct{}),
		stopDone:      make(chan struct{}),
	}
	s.layout.Store(layout)
	logArtifact(log, layout, "serving a verified prebuilt artifact")
	fns := make(map[string]*function, len(layout.Functions))
	for _, fn := range layout.Functions {
		fns[fn.Name] = s.newFunction(p.specs[fn.Name])
	}
	s.functions.Store(newTable(fns))
	s.prewarm = newPrewarm(s, p.specs)
	if s.prewarm != nil {
		s.budget.setSpares(s.prewarm)
	}
	go s.loop()
	go s.rescanLoop()
	return s, nil
}

// newFunction builds a function with a fresh Manager (not yet running).
// Its metrics are the name's, kept across reloads.
func (s *Supervisor) newFunction(spec *launchSpec) *function {
	name := spec.fn.Name
	fm := s.metrics[name]
	if fm == nil {
		fm = observe.NewFunctionMetrics(name, observe.Gauges{
			InFlight: func() float64 {
				return s.gauge(name, func(st routable.FunctionStatus) float64 { return float64(st.InFlight()) })
			},
			Workers: func(state string) float64 {
				return s.gauge(name, func(st routable.FunctionStatus) float64 { return float64(st.Count(state)) })
			},
		})
		fm.BreakerGauge(func() float64 {
			if f := s.current(name); f != nil {
				return breakerValue(f.Breaker.State())
			}
			return 0
		})
		s.metrics[name] = fm
	}
	m := newManager(s, spec, fm)
	f := &routable.Function{Name: name, Config: spec.fn.Config, Pool: m.pool, Metrics: fm, Reporter: m}
	routable.NewGuards(f)
	return &function{Function: f, m: m}
}

func (s *Supervisor) current(name string) *function { return s.functions.Load().byName[name] }

func (s *Supervisor) gauge(name string, f func(routable.FunctionStatus) float64) float64 {
	if fn := s.current(name); fn != nil {
		return f(fn.Status())
	}
	return 0
}

// breakerValue encodes a breaker state for the edgeway_breaker_state gauge.
func breakerValue(state string) float64 {
	switch state {
	case guard.StateOpen:
		return 2
	case guard.StateHalfOpen:
		return 1
	}
	return 0
}

// currentLayout is the layout last applied.
func (s *Supervisor) currentLayout() *config.Layout { return s.layout.Load() }

// RunDir is the private folder holding sockets and the bootstrap.
func (s *Supervisor) RunDir() string { return s.runDir }

// Start runs every function's lifecycle goroutine.
func (s *Supervisor) Start() {
	reply := make(chan struct{})
	select {
	case s.requests <- startRequest{reply}:
		<-reply
	case <-s.done:
	}
}

// Lookup finds a function by name without allocating; it makes the
// Supervisor a routable.Table.
func (s *Supervisor) Lookup(name []byte) *routable.Function {
	return s.functions.Load().routes[string(name)]
}

// Functions returns every routable function, sorted by name.
func (s *Supervisor) Functions() []*routable.Function {
	fns := s.functions.Load().routes
	out := make([]*routable.Function, 0, len(fns))
	for _, f := range fns {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Stop drains and stops every worker: in-flight requests may finish within
// the shutdown grace, then workers get SIGTERM and, after it, SIGKILL. It
// removes the runtime folder. A reload in progress is abandoned: its new
// versions, still booting, are told to stop but not waited for (they never
// served; their processes die with the gateway).
func (s *Supervisor) Stop() {
	reply := make(chan struct{})
	select {
	case s.requests <- supStopRequest{reply}:
		<-reply
	case <-s.done:
		<-s.stopDone
	}
}

// Validate checks everything a serve would resolve for layout (.env files,
// permission profiles, paths) without starting anything.
func Validate(opts config.Options, layout *config.Layout) error {
	_, err := makePlan(opts, layout)
	return err
}

// PrewarmHealth is the prewarm pool's state for /health (a
// *PrewarmStatus); nil when the pool is off.
func (s *Supervisor) PrewarmHealth() any {
	if st := s.prewarm.status(); st != nil {
		return st
	}
	return nil
}
