package gateway

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// failingListener fails its first accepts with err, then accepts.
type failingListener struct {
	net.Listener
	fails    int
	err      error
	accepted int
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", l.err)}
	}
	l.accepted++
	c1, c2 := net.Pipe()
	c2.Close()
	return c1, nil
}

func (l *failingListener) Close() error { return nil }

func TestAcceptRetriesWhenDescriptorsRunOut(t *testing.T) {
	for _, errno := range []error{syscall.EMFILE, syscall.ENFILE} {
		fl := &failingListener{fails: 3, err: errno}
		l := newAcceptRetryListener(fl, zerolog.Nop())
		before := acceptFDExhausted.Get()
		c, err := l.Accept()
		if err != nil || c == nil {
			t.Fatalf("%v: Accept = %v, %v; want a connection after the retries", errno, c, err)
		}
		c.Close()
		// Each failed accept is followed by a shedding accept, which the
		// fake fails too until its failures run out.
		if got := acceptFDExhausted.Get() - before; got != 2 {
			t.Fatalf("%v: counted %d exhausted accepts, want 2", errno, got)
		}
	}
}

func TestAcceptOtherErrorsAreReturned(t *testing.T) {
	fl := &failingListener{fails: 1, err: syscall.EINVAL}
	l := newAcceptRetryListener(fl, zerolog.Nop())
	if _, err := l.Accept(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("Accept = %v, want EINVAL returned", err)
	}
}

func TestCloseEndsTheBackoff(t *testing.T) {
	fl := &failingListener{fails: 1 << 30, err: syscall.EMFILE}
	l := newAcceptRetryListener(fl, zerolog.Nop())
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Accept kept retrying after Close")
	}
}
