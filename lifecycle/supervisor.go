package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
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
// Manager. Lookup is safe for concurrent use and lock-free.
type Supervisor struct {
	opts          config.Options
	layout        *config.Layout
	log           zerolog.Logger
	runDir        string
	bootstrapPath string
	envs          map[string]functionEnv
	permissions   map[string][]string // profile flags per function
	spawner       *spawner
	nextID        atomic.Uint64

	functions atomic.Pointer[map[string]*Function]
	mu        sync.Mutex // guards managers during start/stop
	managers  []*Manager
}

// NewSupervisor prepares a private runtime folder (mode 0700) holding the
// bootstrap and every worker's sockets, and a Manager per function.
func NewSupervisor(opts config.Options, layout *config.Layout, log zerolog.Logger) (*Supervisor, error) {
	envs, err := buildEnvs(opts, layout, os.Environ())
	if err != nil {
		return nil, err
	}
	profiles, err := secure.ParseProfiles(opts.PermissionProfiles)
	if err != nil {
		return nil, fmt.Errorf("flag --permission-profile: %w", err)
	}
	perms := make(map[string][]string, len(layout.Functions))
	for _, fn := range layout.Functions {
		flags, err := profiles.Resolve(fn.Config.Permissions)
		if err != nil {
			return nil, fmt.Errorf("function %s (%s): %w", fn.Name, filepath.Join(fn.Dir, "function.json"), err)
		}
		for _, p := range append([]string{fn.Dir}, layout.Shared...) {
			if err := secure.CheckPermissionPath(p); err != nil {
				return nil, fmt.Errorf("function %s: %w", fn.Name, err)
			}
		}
		perms[fn.Name] = flags
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
		layout:        layout,
		log:           log,
		runDir:        runDir,
		bootstrapPath: bootstrapPath,
		envs:          envs,
		permissions:   perms,
		spawner:       newSpawner(),
	}
	fns := make(map[string]*Function, len(layout.Functions))
	for i := range layout.Functions {
		fn := &layout.Functions[i]
		m := newManager(s, fn)
		s.managers = append(s.managers, m)
		f := &Function{Name: fn.Name, Config: fn.Config, Pool: m.pool, Metrics: m.metrics, m: m}
		NewGuards(f)
		m.metrics.BreakerGauge(func() float64 { return breakerValue(f.Breaker.State()) })
		fns[fn.Name] = f
	}
	s.functions.Store(&fns)
	return s, nil
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

// RunDir is the private folder holding sockets and the bootstrap.
func (s *Supervisor) RunDir() string { return s.runDir }

// Start runs every function's lifecycle goroutine.
func (s *Supervisor) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.managers {
		go m.run()
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
	for i := range s.layout.Functions {
		if f := fns[s.layout.Functions[i].Name]; f != nil {
			out = append(out, f)
		}
	}
	return out
}

// Stop drains and stops every worker: in-flight requests may finish within
// the shutdown grace, then workers get SIGTERM and, after it, SIGKILL. It
// removes the runtime folder.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range s.managers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.stop()
		}()
	}
	wg.Wait()
	os.RemoveAll(s.runDir)
}
