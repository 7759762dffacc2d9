package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"edgeway/bootstrap"
	"edgeway/config"
	"edgeway/observe"
	"edgeway/upstream"

	"github.com/rs/zerolog"
)

// Function is what the gateway needs to route to a function.
type Function struct {
	Name    string
	Config  config.FunctionConfig
	Pool    *upstream.Pool
	Metrics *observe.FunctionMetrics
	m       *Manager
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
	env           []string
	spawner       *spawner
	nextID        atomic.Uint64

	functions atomic.Pointer[map[string]*Function]
	mu        sync.Mutex // guards managers during start/stop
	managers  []*Manager
}

// NewSupervisor prepares a private runtime folder (mode 0700) holding the
// bootstrap and every worker's sockets, and a Manager per function.
func NewSupervisor(opts config.Options, layout *config.Layout, log zerolog.Logger) (*Supervisor, error) {
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
		env:           workerEnv(),
		spawner:       newSpawner(),
	}
	fns := make(map[string]*Function, len(layout.Functions))
	for i := range layout.Functions {
		fn := &layout.Functions[i]
		m := newManager(s, fn)
		s.managers = append(s.managers, m)
		fns[fn.Name] = &Function{Name: fn.Name, Config: fn.Config, Pool: m.pool, Metrics: m.metrics, m: m}
	}
	s.functions.Store(&fns)
	return s, nil
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
