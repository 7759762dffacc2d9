// Command edgeway serves a Supabase-style functions folder through pools of
// Deno worker processes behind one fasthttp front door.
//
//	edgeway serve [flags]   serve the functions folder
//	edgeway check [flags]   validate the folder and type-check every function
//	edgeway cache [flags]   fetch every function's dependencies into Deno's cache
//	edgeway list [flags]    list the functions (and, with --from, their live state)
//	edgeway new NAME        scaffold a function (index.ts with Deno.serve)
//	edgeway build [flags]   bundle the functions into a verified artifact (manifest.json)
//	edgeway package [flags] pack an artifact into one file, optionally signed
//	edgeway keygen [flags]  write an ed25519 key pair for signing packages
//	edgeway version         print the version
//	edgeway help            list every flag with its environment variable and default
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/setup"
	"edgeway.dev/edgeway/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		keepSysmonAwake(os.Args[2:]) // re-executes, or returns
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command line. A worker's namespace helper (a re-execution
// of this program, see lifecycle.NamespaceHelperCommand) never gets here:
// the server package's init runs it.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
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
  edgeway build [flags]   bundle every function into an artifact folder with a
                          manifest of sha256 sums (--out DIST; build --help)
  edgeway package [flags] pack an artifact folder into one file, signed with
                          --sign-key (package --help)
  edgeway keygen [flags]  write an ed25519 key pair for package and --verify-key
  edgeway version         print the version
  edgeway help            this help

Flags of serve (each also read from its environment variable; the flag wins):
`)
	config.PrintHelp(w)
}

// fail prints one line naming what is wrong and returns the exit code.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "edgeway: %v\n", err)
	return 1
}

// serve is `edgeway serve`: the flags and the environment make a
// server.Config, and the server package does the rest. The flags are
// parsed here first too, for --help, the exit code of a bad flag (2) and
// --gomaxprocs, which only a program (not a library) may set.
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
	setGoMaxProcs(opts.GoMaxProcs)
	// The port first: taken, it is the only line printed.
	ln, err := setup.Listen(opts)
	if err != nil {
		return fail(stderr, err)
	}
	srv, err := server.New(server.Config{Flags: args, Getenv: os.Getenv, LogOutput: stderr, Version: version})
	if err != nil {
		ln.Close()
		return fail(stderr, err) // New has written out the log lines before the error
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				srv.Reload("SIGHUP") // coalesced; never blocks
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownGrace)
			srv.Shutdown(ctx)
			cancel()
			return 0
		case err := <-served:
			srv.Shutdown(context.Background())
			return fail(stderr, err)
		}
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
