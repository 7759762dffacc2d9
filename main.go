// Command edgeway serves a Supabase-style functions folder through pools of
// Deno worker processes behind one fasthttp front door.
//
//	edgeway serve [flags]   serve the functions folder
//	edgeway check [flags]   validate the folder and type-check every function
//	edgeway cache [flags]   fetch every function's dependencies into Deno's cache
//	edgeway list [flags]    list the functions (and, with --from, their live state)
//	edgeway new NAME        scaffold a function (index.ts with Deno.serve)
//	edgeway version         print the version
//	edgeway help            list every flag with its environment variable and default
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/gateway"
	"edgeway.dev/edgeway/internal/lifecycle"
	"edgeway.dev/edgeway/internal/observe"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// logCloseTimeout bounds writing the last log lines at exit: a stuck
// stderr must not keep the process from exiting.
const logCloseTimeout = 2 * time.Second

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case lifecycle.NamespaceHelperCommand: // a worker being started, not a user
		return lifecycle.RunNamespaceHelper(args[1:], stderr)
	case "serve":
		return serve(args[1:], stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "cache":
		return cache(args[1:], stdout, stderr)
	case "new":
		return newFunction(args[1:], stdout, stderr)
	case "list":
		return list(args[1:], stdout, stderr)
	case "build":
		return build(args[1:], stdout, stderr)
	case "package":
		return packageArtifact(args[1:], stdout, stderr)
	case "keygen":
		return keygen(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "edgeway", version)
		return 0
	case "help", "--help", "-h":
		if len(args) > 1 && args[1] == "--markdown" {
			config.PrintMarkdown(stdout)
			return 0
		}
		usage(stdout)
		return 0
	default:
		return unknownCommand(stderr, args[0])
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `edgeway: one front door for many Deno edge functions

Usage:
  edgeway serve [flags]   serve a Supabase-style functions folder
  edgeway check [flags]   validate a functions folder and type-check every
                          function with deno check (exits non-zero on errors)
  edgeway cache [flags]   fetch every function's dependencies into Deno's
                          cache before traffic (exits non-zero on errors)
  edgeway list [flags]    the functions with routes, auth, permissions and pool;
                          with --from http://HOST:PORT and --internal-key, the
                          live state of a running gateway too
  edgeway new NAME        create a function: NAME/index.ts with Deno.serve
                          (edgeway new --help for its flags)
  edgeway version         print the version
  edgeway help            this help

Flags of serve (each also read from its environment variable; the flag wins):
`)
	config.PrintHelp(w)
}

// flushWithin writes out the buffered log lines, waiting at most timeout
// for a stuck output.
func flushWithin(w *observe.BufferedWriter, timeout time.Duration) {
	done := make(chan struct{})
	go func() {
		w.Flush()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// fail prints one line naming what is wrong and returns the exit code.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "edgeway: %v\n", err)
	return 1
}

func serve(args []string, stderr io.Writer) int {
	opts, err := config.Parse(args, os.Getenv)
	if errors.Is(err, config.ErrHelp) {
		commandUsage(stderr, "serve")
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "edgeway: %v\n", err)
		return 2
	}
	logOut := observe.NewBufferedWriter(stderr, opts.LogBufferSize, int(opts.LogMaxBuffered), opts.LogFlushInterval)
	defer logOut.Close(logCloseTimeout)
	log := newLogger(opts, stderr, logOut)
	logOut.SetLogger(log)
	// A startup error is the last line on screen: the warnings logged
	// before it are written out first (the log is buffered).
	failStartup := func(err error) int {
		flushWithin(logOut, logCloseTimeout)
		return fail(stderr, err)
	}
	procs := setGoMaxProcs(opts.GoMaxProcs)
	sec, err := buildSecurity(&opts, log)
	if err != nil {
		return failStartup(err)
	}
	if a, ok := sec.Auth.(*gateway.JWTAuth); ok {
		defer a.Verifier.Close()
	}
	denoPath, err := exec.LookPath(opts.Deno)
	if err != nil {
		return failStartup(denoNotFound(opts.Deno, err))
	}
	// Workers run in their function's folder: a relative path would break.
	if denoPath, err = filepath.Abs(denoPath); err != nil {
		return failStartup(fmt.Errorf("flag --deno: %w", err))
	}
	opts.Deno = denoPath
	layout, err := config.Discover(opts.Functions, opts)
	if err != nil {
		return failStartup(err)
	}
	for _, w := range startupWarnings(opts, layout) {
		log.Warn().Msg(w)
	}
	addr := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return failStartup(fmt.Errorf("%s, %s: cannot listen on %s: %w", opts.Source("host"), opts.Source("port"), addr, err))
	}
	sup, err := lifecycle.NewSupervisor(opts, layout, log)
	if err != nil {
		ln.Close()
		return failStartup(err)
	}
	gw := gateway.New(opts, sup, sec, log)
	var adminLn net.Listener
	if opts.AdminListen != "" {
		if adminLn, err = net.Listen("tcp", opts.AdminListen); err != nil {
			ln.Close()
			sup.Stop()
			return failStartup(fmt.Errorf("flag --admin-listen: cannot listen on %s: %w", opts.AdminListen, err))
		}
	}
	// After every startup error, which must stay one line on its own.
	checkFDLimit(opts, layout, log)
	sup.Start()
	served := make(chan error, 2)
	go func() { served <- gw.Serve(ln) }()
	if adminLn != nil {
		go func() { served <- gw.ServeAdmin(gateway.RetryAccept(adminLn, log)) }()
		log.Info().Str("addr", adminLn.Addr().String()).Msg("admin endpoints listening")
	}

	names := make([]string, 0, len(layout.Functions))
	for _, f := range layout.Functions {
		names = append(names, f.Name)
	}
	log.Info().Str("addr", ln.Addr().String()).Str("functions_dir", layout.Root).Strs("functions", names).Str("deno", denoPath).Str("run_dir", sup.RunDir()).Int("gomaxprocs", procs).Str("version", version).Msg("edgeway listening")

	rescan := func() (*config.Layout, error) { return config.Discover(opts.Functions, opts) }
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	if opts.Watch == "true" || (opts.Watch == "auto" && opts.Dev) {
		go func() {
			if err := sup.Watch(layout.Root, opts.WatchDebounce, rescan, stopWatch); err != nil {
				log.Error().Err(err).Msg("cannot watch the functions folder; SIGHUP still reloads")
			}
		}()
		log.Info().Str("dir", layout.Root).Msg("watching for changes")
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
wait:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				log.Info().Msg("SIGHUP: reload requested")
				sup.RequestReload(rescan, "SIGHUP") // coalesced; never blocks
				continue
			}
			log.Info().Str("signal", sig.String()).Dur("grace_ms", opts.ShutdownGrace).Msg("shutting down")
			break wait
		case err := <-served:
			log.Error().Err(err).Msg("listener failed")
			sup.Stop()
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownGrace)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Msg("in-flight requests did not finish within the shutdown grace")
	}
	sup.Stop()
	log.Info().Msg("stopped")
	return 0
}

// checkFDLimit raises the soft file descriptor limit to the hard one and
// warns when the limits configured may not fit in it: running out does not
// stop the gateway (accept sheds and retries), but connections are refused
// and workers fail to start meanwhile.
func checkFDLimit(opts config.Options, layout *config.Layout, log zerolog.Logger) {
	limit, err := raiseFDLimit()
	if err != nil {
		log.Warn().Err(err).Msg("cannot raise the file descriptor limit")
	}
	need, workers := fdNeed(opts, layout)
	if limit > 0 && uint64(need) > limit {
		log.Warn().Uint64("limit", limit).Int("need", need).Int("max_client_conns", opts.MaxClientConns).
			Int("max_workers_total", workers).Int("max_websockets", opts.MaxWebSockets).
			Msg("the file descriptor limit (ulimit -n) may not fit --max-client-conns plus the workers' sockets: raise it or lower the limits")
	}
}

// setGoMaxProcs applies --gomaxprocs. The gateway shares the machine with
// its Deno workers: measured on 2 cores, one Go thread proxies faster than
// two (fewer cross-thread wake-ups), so auto takes half the CPUs.
func setGoMaxProcs(n int) int {
	if n == 0 {
		if os.Getenv("GOMAXPROCS") != "" {
			return runtime.GOMAXPROCS(0)
		}
		n = max(1, runtime.NumCPU()/2)
	}
	runtime.GOMAXPROCS(n)
	return n
}

// newLogger logs JSON (or console lines on a terminal) through the
// buffered writer out; term is the real stderr, used to detect a terminal.
func newLogger(opts config.Options, term io.Writer, out io.Writer) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	level, _ := zerolog.ParseLevel(opts.LogLevel)
	format := opts.LogFormat
	if format == "" {
		format = "json"
		if f, ok := term.(*os.File); opts.Dev || (ok && isatty.IsTerminal(f.Fd())) {
			format = "console"
		}
	}
	if format == "console" {
		// Colours only for a terminal (NO_COLOR honoured): --dev's console
		// format redirected to a file or journald stays plain text.
		f, ok := term.(*os.File)
		colour := ok && isatty.IsTerminal(f.Fd()) && os.Getenv("NO_COLOR") == ""
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05.000", NoColor: !colour}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}
