package setup

import (
	"fmt"
	"net"
	"strconv"

	"edgeway.dev/edgeway/internal/config"
)

// Listen opens the front door's listener on --host and --port; its error
// names where each came from.
func Listen(opts config.Options) (net.Listener, error) {
	addr := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: cannot listen on %s: %w", opts.Source("host"), opts.Source("port"), addr, err)
	}
	return ln, nil
}

// ListenAdmin opens the admin endpoints' listener (--admin-listen).
func ListenAdmin(opts config.Options) (net.Listener, error) {
	ln, err := net.Listen("tcp", opts.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("flag --admin-listen: cannot listen on %s: %w", opts.AdminListen, err)
	}
	return ln, nil
}
