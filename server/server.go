package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/gateway"
	"edgeway.dev/edgeway/internal/lifecycle"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/secure"
	"edgeway.dev/edgeway/internal/setup"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// logCloseTimeout bounds writing the last log lines at Shutdown: a stuck
// output must not keep the host from stopping.
const logCloseTimeout = 2 * time.Second

// hookStopTimeout bounds waiting for the queued hooks at Shutdown.
const hookStopTimeout = 5 * time.Second

// Server is the gateway and its functions. Build it with New, start the
// functions with Start (Serve and ListenAndServe start them too), serve
// requests with Serve, Handler or HTTPHandler, and stop everything with
// Shutdown. Its methods are safe for concurrent use.
type Server struct {
	opts     config.Options
	log      zerolog.Logger
	logOut   *observe.BufferedWriter
	layout   *config.Layout
	sup      *lifecycle.Supervisor
	gw       *gateway.Gateway
	closeSec func()          // stops the JWKS refresh, if any
	apiKeys  *secure.APIKeys // --auth apikey: re-read on Reload
	hooks    *dispatcher
	version  string

	mu          sync.Mutex
	started     bool
	stopped     bool
	adminOpened bool // --admin-listen's listener is served
	stopWatch   chan struct{}
}

// ErrServerClosed is returned by Start, and so by Serve, when called
// after Shutdown.
var ErrServerClosed = errors.New("edgeway server: closed")

// New validates cfg, resolves Deno, reads the functions folder and
// prepares the workers' runtime folder; nothing is started and nothing
// listens. Its errors name the flag, variable or file at fault; warnings
// (folders that are not functions, shadowed routes ...) are logged.
func New(cfg Config) (*Server, error) {
	opts, err := config.Parse(cfg.args(), cfg.getenv())
	if err != nil {
		return nil, err
	}
	out := cfg.LogOutput
	if out == nil {
		out = os.Stderr
	}
	logOut := observe.NewBufferedWriter(out, opts.LogBufferSize, int(opts.LogMaxBuffered), opts.LogFlushInterval)
	log := setup.NewLogger(opts, out, logOut)
	logOut.SetLogger(log)
	s := &Server{opts: opts, log: log, logOut: logOut, closeSec: func() {}, version: cfg.Version}
	if err := s.build(cfg); err != nil {
		// The warnings logged before the error are written out first.
		s.closeSec()
		logOut.Close(logCloseTimeout)
		return nil, err
	}
	return s, nil
}

// build is New after the options and the log.
func (s *Server) build(cfg Config) error {
	opts, log := &s.opts, s.log
	sec, err := setup.BuildSecurity(opts, log)
	if err != nil {
		return err
	}
	if a, ok := sec.Auth.(*gateway.JWTAuth); ok {
		s.closeSec = a.Verifier.Close
	}
	if k, ok := sec.Auth.(*secure.APIKeys); ok {
		s.apiKeys = k
	}
	if cfg.Authenticator != nil {
		sec.Auth = authAdapter{a: cfg.Authenticator, log: log}
		s.apiKeys = nil
	}
	denoPath, err := exec.LookPath(opts.Deno)
	if err != nil {
		return setup.DenoNotFound(opts.Deno, err)
	}
	// Workers run in their function's folder: a relative path would break.
	if denoPath, err = filepath.Abs(denoPath); err != nil {
		return fmt.Errorf("flag --deno: %w", err)
	}
	opts.Deno = denoPath
	layout, err := config.Discover(opts.Functions, *opts)
	if err != nil {
		return err
	}
	for _, w := range setup.StartupWarnings(*opts, layout) {
		log.Warn().Msg(w)
	}
	sup, err := lifecycle.NewSupervisor(*opts, layout, log)
	if err != nil {
		return err
	}
	s.hooks = newDispatcher(log)
	sup.SetHooks(lifecycleHooks(cfg.Hooks, s.hooks))
	gw := gateway.New(*opts, sup, sec, log)
	gw.SetHooks(gatewayHooks(cfg.Hooks, s.hooks))
	s.layout, s.sup, s.gw = layout, sup, gw
	return nil
}

// Listen opens the front door's listener on Host:Port (--host, --port)
// for Serve.
func (s *Server) Listen() (net.Listener, error) { return setup.Listen(s.opts) }

// Start starts the functions: workers of functions with min workers or
// eager spawn boot now, the others on their first request; with --watch
// the functions folder is watched for changes. It does not wait for
// workers to boot. Calling it again does nothing; after Shutdown it
// returns ErrServerClosed. A request that Handler or HTTPHandler
// receive before Start waits for it like one waiting for a worker (up to
// the function's queue timeout, then 503 OVERLOADED): start first.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrServerClosed
	}
	if s.started {
		return nil
	}
	s.started = true
	setup.CheckFDLimit(s.opts, s.layout, s.log)
	s.sup.Start()
	s.stopWatch = make(chan struct{})
	if s.opts.Watch == "true" || (s.opts.Watch == "auto" && s.opts.Dev) {
		stop := s.stopWatch
		go func() {
			if err := s.sup.Watch(s.layout.Root, s.opts.WatchDebounce, s.rescan, stop); err != nil {
				s.log.Error().Err(err).Msg("cannot watch the functions folder; Reload (SIGHUP) still reloads")
			}
		}()
		s.log.Info().Str("dir", s.layout.Root).Msg("watching for changes")
	}
	return nil
}

func (s *Server) rescan() (*config.Layout, error) { return config.Discover(s.opts.Functions, s.opts) }

// Serve starts the functions if Start has not, then serves the gateway
// on ln until Shutdown, when it returns nil; with --admin-listen it also
// opens and serves the admin endpoints' listener (once). A failing
// listener ends it with the error.
func (s *Server) Serve(ln net.Listener) error {
	adminLn, err := s.listenAdmin()
	if err != nil {
		return err
	}
	if err := s.Start(context.Background()); err != nil {
		return err
	}
	served := make(chan error, 2)
	if adminLn != nil {
		go func() { served <- s.gw.ServeAdmin(gateway.RetryAccept(adminLn, s.log)) }()
		s.log.Info().Str("addr", adminLn.Addr().String()).Msg("admin endpoints listening")
	}
	go func() {
		if err := s.gw.Serve(ln); err != nil {
			served <- fmt.Errorf("serving %s: %w", ln.Addr(), err)
			return
		}
		served <- nil
	}()
	names := make([]string, 0, len(s.layout.Functions))
	for _, f := range s.layout.Functions {
		names = append(names, f.Name)
	}
	ev := s.log.Info().Str("addr", ln.Addr().String()).Str("functions_dir", s.layout.Root).Strs("functions", names).
		Str("deno", s.opts.Deno).Str("run_dir", s.sup.RunDir()).Int("gomaxprocs", runtime.GOMAXPROCS(0))
	if s.version != "" {
		ev = ev.Str("version", s.version)
	}
	ev.Msg("edgeway listening")
	return <-served
}

// listenAdmin opens the --admin-listen listener the first time; nil
// without the flag.
func (s *Server) listenAdmin() (net.Listener, error) {
	if s.opts.AdminListen == "" {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adminOpened {
		return nil, nil // served by the first Serve
	}
	ln, err := setup.ListenAdmin(s.opts)
	if err != nil {
		return nil, err
	}
	s.adminOpened = true
	return ln, nil
}

// ListenAndServe is Listen, then Serve.
func (s *Server) ListenAndServe() error {
	ln, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Reload reads the functions folder again and applies what changed, as
// SIGHUP does to the binary: changed functions get new workers (the old
// ones drain), removed ones stop, a folder that no longer loads leaves the
// running functions untouched (the error is logged). It returns at once;
// reloads asked for while one runs are coalesced. reason is logged.
// With --auth apikey, --api-keys-file is read again first (a file that
// does not load keeps the keys in force; the error is logged).
func (s *Server) Reload(reason string) {
	s.log.Info().Msg(reason + ": reload requested")
	if s.apiKeys != nil {
		setup.ReloadAPIKeys(&s.opts, s.apiKeys, s.log)
	}
	s.sup.RequestReload(s.rescan, reason)
}

// Shutdown stops accepting requests, lets those in flight finish until
// ctx ends (open WebSockets are closed with 1001 going away), then stops
// every worker (SIGTERM, then SIGKILL after --shutdown-grace), removes
// the runtime folder, runs the hooks still queued and flushes the log.
// A host serving HTTPHandler or Handler stops its own server first. The
// error is ctx's when requests were still in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	started := s.started
	if s.stopWatch != nil {
		close(s.stopWatch)
	}
	s.mu.Unlock()
	if started {
		grace := time.Duration(0)
		if d, ok := ctx.Deadline(); ok {
			grace = time.Until(d)
		}
		s.log.Info().Dur("grace_ms", grace).Msg("shutting down")
	}
	err := s.gw.Shutdown(ctx)
	if err != nil {
		s.log.Warn().Err(err).Msg("in-flight requests did not finish within the shutdown grace")
	}
	s.sup.Stop()
	s.closeSec()
	s.hooks.stop(hookStopTimeout)
	if started {
		s.log.Info().Msg("stopped")
	}
	s.logOut.Close(logCloseTimeout)
	return err
}

// Handler returns the gateway as a fasthttp handler, for a host's own
// fasthttp.Server: routes, auth, limits and proxying as on the gateway's
// listener. The host's server settings then apply instead of the
// gateway's: set StreamRequestBody (otherwise bodies are read whole
// first, up to its MaxRequestBodySize) and keep its timeouts and
// Concurrency in line with the gateway's flags; the gateway's per-
// connection protections (slow-body deadlines, yield between requests,
// read-ahead limits) are its listener's only. WebSocket upgrades work
// (the handler hijacks the connection).
func (s *Server) Handler() fasthttp.RequestHandler { return s.gw.Handler() }
