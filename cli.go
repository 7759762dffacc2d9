package main

import (
	"fmt"
	"io"
	"strings"

	"edgeway.dev/edgeway/internal/config"
)

// commandHelp is the one-paragraph description of each command taking
// flags, printed by `edgeway <command> --help` above the flags.
var commandHelp = map[string]string{
	"serve": "Serve a Supabase-style functions folder.",
	"check": "Validate a functions folder and type-check every function with deno check;\nexits non-zero on errors.",
	"cache": "Fetch every function's dependencies into Deno's cache before traffic;\nexits non-zero on errors.",
	"list":  "List the functions of a folder: routes, auth, permissions, pool size.\nWith --from http://HOST:PORT (and --internal-key) also the live state a\nrunning gateway reports: workers, restarts, breaker, p95 latency.",
}

// commandUsage prints `edgeway <command> --help`: the command, what it does
// and the flags it reads (those of serve).
func commandUsage(w io.Writer, command string) {
	fmt.Fprintf(w, "Usage: edgeway %s [flags]\n\n%s\n\nFlags (each also read from its environment variable; the flag wins):\n", command, commandHelp[command])
	config.PrintHelp(w)
}

// unknownCommand reports an unknown first argument in two lines, not the
// whole help: a flag before any command gets a hint of its own.
func unknownCommand(stderr io.Writer, arg string) int {
	if strings.HasPrefix(arg, "-") {
		fmt.Fprintf(stderr, "edgeway: %s before a command: flags follow the command, as in `edgeway serve %s`\n", arg, arg)
	} else {
		fmt.Fprintf(stderr, "edgeway: unknown command %q\n", arg)
	}
	fmt.Fprintln(stderr, "Commands: serve, check, cache, list, new, build, package, keygen, version, help. `edgeway help` lists them and every flag.")
	return 2
}
