package server

import (
	"os"

	"edgeway.dev/edgeway/internal/lifecycle"
)

// A worker with a private /tmp is started, when the program does not run
// as root (or with --function-tmp-setup=exec; as root the spawner's thread
// sets up the namespace itself), by re-executing the gateway's
// own program (os.Executable) in new namespaces, as a helper that sets up
// the worker's mounts and then becomes Deno (Go cannot run code between
// clone and exec). Embedded, that program is the host's: this package's
// init recognises the helper's hidden command line and runs the helper
// before the host's main, which never sees it.
func init() {
	if len(os.Args) > 1 && os.Args[1] == lifecycle.NamespaceHelperCommand {
		os.Exit(lifecycle.RunNamespaceHelper(os.Args[2:], os.Stderr))
	}
}
