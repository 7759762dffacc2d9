package lifecycle

import (
	"errors"
	"net"
	"os"
	"time"
)

// A node:http server (express, fastify, createServer().listen(port)) is
// moved onto the worker's socket by Deno itself (DENO_SERVE_ADDRESS) and
// tells the bootstrap nothing, so the gateway watches for the socket
// while it waits for "ready": Deno binds and listens in one step, and only
// the worker can create that path in the private runtime folder. Once it
// is bound the gateway sends "serving"; the bootstrap answers "ready"
// unless it has already (Deno.serve's onListen), so exactly one "ready"
// arrives either way. Polling here costs the worker nothing: a lazily
// loaded timer in the bootstrap would add milliseconds to every boot.
const (
	servingPollFast    = 2 * time.Millisecond  // for the first servingPollFastFor of a boot
	servingPollSlow    = 20 * time.Millisecond // after that
	servingPollFastFor = time.Second
)

// awaitFirstLine waits until the worker's first control line starts to
// arrive, telling the bootstrap "serving" once its socket is bound. It
// returns the control connection's error (closed, the boot deadline).
func (p *process) awaitFirstLine(deadline time.Time) error {
	start := time.Now()
	for {
		wait := servingPollFast
		if time.Since(start) > servingPollFastFor {
			wait = servingPollSlow
		}
		until := time.Now().Add(wait)
		if until.After(deadline) {
			until = deadline
		}
		p.ctl.SetReadDeadline(until)
		_, err := p.ctlr.Peek(1)
		if err == nil {
			return nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !time.Now().Before(deadline) {
			return err
		}
		if socketBound(p.sock) {
			p.send("serving", deadline)
			return nil
		}
	}
}

// socketBound reports whether path is a Unix socket.
func socketBound(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}
