package gateway

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// Accepting with every file descriptor in use fails with EMFILE (the
// process's limit) or ENFILE (the system's). fasthttp treats any accept
// error but a timeout as permanent and stops serving, and main then exits:
// a burst of connections would end the gateway. acceptRetryListener keeps
// serving instead: it sheds one pending connection (a spare descriptor,
// kept open for this, is closed to accept it and close it at once, so the
// client fails fast instead of waiting in the backlog), waits a backoff
// and tries again.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// acceptWarnEvery bounds the warnings while descriptors run out.
	acceptWarnEvery = 10 * time.Second
)

var (
	acceptFDExhausted = metrics.NewCounter("edgeway_accept_fd_exhausted_total")
	acceptShed        = metrics.NewCounter("edgeway_accept_shed_total")
)

type acceptRetryListener struct {
	net.Listener
	log zerolog.Logger

	closeOnce sync.Once
	closed    chan struct{}

	// Only the accepting goroutine touches these (fasthttp accepts from one).
	spare    *os.File // reserved descriptor, closed to shed a connection
	lastWarn time.Time
	failures uint64 // since the last warning
}

// RetryAccept wraps ln so that running out of file descriptors sheds and
// retries instead of ending Serve (see acceptRetryListener). Serve installs
// it; main wraps the admin listener with it.
func RetryAccept(ln net.Listener, log zerolog.Logger) net.Listener {
	return newAcceptRetryListener(ln, log)
}

func newAcceptRetryListener(ln net.Listener, log zerolog.Logger) *acceptRetryListener {
	l := &acceptRetryListener{Listener: ln, log: log, closed: make(chan struct{})}
	l.spare, _ = os.Open(os.DevNull)
	return l
}

func (l *acceptRetryListener) Accept() (net.Conn, error) {
	backoff := acceptBackoffMin
	for {
		c, err := l.Listener.Accept()
		if err == nil || !fdExhausted(err) {
			return c, err
		}
		acceptFDExhausted.Inc()
		l.shed()
		l.warn(err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return nil, net.ErrClosed
		}
		backoff = min(2*backoff, acceptBackoffMax)
	}
}

// shed accepts one pending connection on the spare descriptor and closes
// it, then reserves the descriptor again.
func (l *acceptRetryListener) shed() {
	if l.spare != nil {
		l.spare.Close()
		l.spare = nil
	}
	if c, err := l.Listener.Accept(); err == nil {
		c.Close()
		acceptShed.Inc()
	}
	l.spare, _ = os.Open(os.DevNull) // nil if still none free: retried next time
}

func (l *acceptRetryListener) warn(err error) {
	l.failures++
	if now := time.Now(); now.Sub(l.lastWarn) >= acceptWarnEvery {
		l.log.Warn().Err(err).Uint64("failures", l.failures).
			Msg("out of file descriptors: shedding new connections and retrying (edgeway_accept_fd_exhausted_total)")
		l.lastWarn, l.failures = now, 0
	}
}

func (l *acceptRetryListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// fdExhausted reports whether an accept failed for want of a descriptor.
func fdExhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
