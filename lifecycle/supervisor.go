package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"edgeway/bootstrap"
	"edgeway/config"
	"edgeway/gateway/guard"
	"edgeway/observe"
	"edgeway/secure"
	"edgeway/upstream"

	"github.com/rs/zerolog"
)

// Function is what the gateway needs to route to a function.
type Function struct {
	Name    string
	Config  config.FunctionConfig
	Pool    *upstream.Pool
	Metrics *observe.FunctionMetrics
	// Per-function guards; RateLimiter is nil when the limit is off.
	RateLimiter *guard.RateLimiter
	Breaker     *guard.Breaker
	Latency     *guard.LatencyRing
	m           *Manager
}

// NewGuards builds a function's rate limiter, circuit breaker and latency
// ring from its configuration.
func NewGuards(f *Function) {
	f.RateLimiter = guard.NewRateLimiter(guard.RateLimitOptions{RPM: f.Config.RPM})
	f.Breaker = guard.NewBreaker(guard.BreakerOptions{ErrorRate: f.Config.Breaker.ErrorRate, Window: f.Config.Breaker.Window, Cooldown: f.Config.Breaker.Cooldown})
	f.Latency = guard.NewLatencyRing(guard.DefaultLatencyRingSize)
}

// Status returns the function's visible state.
func (f *Function) Status() FunctionStatus { return f.m.Status() }

// Supervisor owns the runtime folder, the spawner and every function's
// Manager. Lookup is safe for concurrent use and lock-free; Reload and
// Stop are serialised by mu.
type Supervisor struct {
	opts          config.Options
	log           zerolog.Logger
	runDir        string
	bootstrapPath string
	spawner       *spawner
	nextID        atomic.Uint64

	functions atomic.Pointer[map[string]*Function]
	// reloaded tells the watcher that a reload it did not trigger (SIGHUP)
	// may have changed what lies outside the functions folder.
	reloaded chan struct{}

	mu      sync.Mutex // guards the fields below
	layout  *config.Layout
	prints  map[string]string // content fingerprint per function
	metrics map[string]*observe.FunctionMetrics
	started bool
	stopped bool
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
			return nil, fmt.Errorf("function %s (%s): %w", fn.Name, filepath.Join(fn.Dir, "function.json"), err)
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
		p.specs[fn.Name] = &launchSpec{fn: fn, readable: readable, perms: flags, env: envs[fn.Name], importMap: imap}
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
	runDir, err := os.MkdirTemp("", "edgeway-")
	if err != nil {
		return nil, fmt.Errorf("create runtime folder: %w", err)
	}
	bootstrapPath := filepath.Join(runDir, "bootstrap.js")
	if err := os.WriteFile(bootstrapPath, bootstrap.Script, 0o400); err != nil {
		os.RemoveAll(runDir)
		return nil, fmt.Errorf("write bootstrap: %w", err)
	}
	s := &Supervisor{
		opts:          opts,
		log:           log,
		runDir:        runDir,
		bootstrapPath: bootstrapPath,
		spawner:       newSpawner(),
		layout:        layout,
		prints:        p.prints,
		metrics:       map[string]*observe.FunctionMetrics{},
		reloaded:      make(chan struct{}, 1),
	}
	fns := make(map[string]*Function, len(layout.Functions))
	for _, fn := range layout.Functions {
		fns[fn.Name] = s.newFunction(p.specs[fn.Name])
	}
	s.functions.Store(&fns)
	return s, nil
}

// newFunction builds a function with a fresh Manager (not yet running).
// Its metrics are the name's, kept across reloads.
func (s *Supervisor) newFunction(spec *launchSpec) *Function {
	name := spec.fn.Name
	fm := s.metrics[name]
	if fm == nil {
		fm = observe.NewFunctionMetrics(name, observe.Gauges{
			InFlight: func() float64 {
				return s.gauge(name, func(st FunctionStatus) float64 { return float64(st.inFlight()) })
			},
			Workers: func(state string) float64 {
				return s.gauge(name, func(st FunctionStatus) float64 { return float64(st.count(state)) })
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
	f := &Function{Name: name, Config: spec.fn.Config, Pool: m.pool, Metrics: fm, m: m}
	NewGuards(f)
	return f
}

func (s *Supervisor) current(name string) *Function { return (*s.functions.Load())[name] }

func (s *Supervisor) gauge(name string, f func(FunctionStatus) float64) float64 {
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
func (s *Supervisor) currentLayout() *config.Layout {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.layout
}

// RunDir is the private folder holding sockets and the bootstrap.
func (s *Supervisor) RunDir() string { return s.runDir }

// Start runs every function's lifecycle goroutine.
func (s *Supervisor) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = true
	for _, f := range *s.functions.Load() {
		go f.m.run()
	}
}

// Lookup finds a function by name without allocating.
func (s *Supervisor) Lookup(name []byte) *Function {
	return (*s.functions.Load())[string(name)]
}

// Functions returns every routable function, sorted by name.
func (s *Supervisor) Functions() []*Function {
	fns := *s.functions.Load()
	out := make([]*Function, 0, len(fns))
	for _, f := range fns {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Stop drains and stops every worker: in-flight requests may finish within
// the shutdown grace, then workers get SIGTERM and, after it, SIGKILL. It
// removes the runtime folder.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	var wg sync.WaitGroup
	for _, f := range *s.functions.Load() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.m.stop()
		}()
	}
	wg.Wait()
	os.RemoveAll(s.runDir)
}

// Validate checks everything a serve would resolve for layout (.env files,
// permission profiles, paths) without starting anything.
func Validate(opts config.Options, layout *config.Layout) error {
	_, err := makePlan(opts, layout)
	return err
}
