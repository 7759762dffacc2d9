package lifecycle

import (
	"fmt"
	"net"
	"strconv"
	"sync"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
)

// inspector hands out --inspect ports: each live worker its own, the
// lowest free one counting up from the base, given back when the worker
// has exited (Deno refuses to start on a port in use, so two workers can
// never share one).
type inspector struct {
	host string
	base int
	brk  bool
	mu   sync.Mutex
	used map[int]bool
}

func newInspector(opts config.Options) *inspector {
	if opts.Inspect == "" {
		return nil
	}
	host, port, _ := net.SplitHostPort(opts.Inspect) // validated by config
	base, _ := strconv.Atoi(port)
	return &inspector{host: host, base: base, brk: opts.InspectBrk, used: map[int]bool{}}
}

// take reserves a port.
func (in *inspector) take() (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for p := in.base; p <= 65535; p++ {
		if !in.used[p] {
			in.used[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("--inspect: no port left above %d", in.base)
}

func (in *inspector) give(port int) {
	in.mu.Lock()
	delete(in.used, port)
	in.mu.Unlock()
}

// workerExtras is what one worker gets beyond its function's launch spec:
// its share of the sandbox and its inspector port.
type workerExtras struct {
	box     *workerBox
	in      *inspector
	port    int // 0 = no inspector
	release func()
}

// workerExtras prepares worker id's extras; release undoes them once the
// worker has exited (or failed to start). needs are the files Deno opens
// itself (see sandbox.box).
func (s *Supervisor) workerExtras(spec *launchSpec, id uint64, needs ...string) (workerExtras, error) {
	box, err := s.sandbox.box(spec, s.runDir, id, needs...)
	if err != nil {
		return workerExtras{}, err
	}
	w := workerExtras{box: box, in: s.inspect}
	if s.inspect != nil {
		if w.port, err = s.inspect.take(); err != nil {
			box.cleanup()
			return workerExtras{}, err
		}
	}
	var once sync.Once
	w.release = func() {
		once.Do(func() {
			box.cleanup()
			if w.port != 0 {
				s.inspect.give(w.port)
			}
		})
	}
	return w, nil
}

func (w workerExtras) perms() []string {
	if w.box == nil {
		return nil
	}
	return w.box.perms
}

func (w workerExtras) env() []string {
	if w.box == nil {
		return nil
	}
	return w.box.env
}

func (w workerExtras) addr() string {
	return net.JoinHostPort(w.in.host, strconv.Itoa(w.port))
}

func (w workerExtras) inspectFlags() []string {
	switch {
	case w.port == 0:
		return nil
	case w.in.brk:
		// Deno's own --inspect-brk never gets past a --preload module once
		// a debugger has attached (Deno 2.9.6: it waits for a second
		// session before the entry); --inspect-wait holds the worker until
		// a debugger attaches and then runs the bootstrap and the entry.
		return []string{"--inspect-wait=" + w.addr()}
	}
	return []string{"--inspect=" + w.addr()}
}

// logInspector says where the worker's debugger listens.
func (w workerExtras) logInspector(log zerolog.Logger, id uint64) {
	if w.port == 0 {
		return
	}
	log.Info().Uint64("worker", id).Str("inspect", w.addr()).Bool("brk", w.in.brk).
		Msg("worker inspector listening (chrome://inspect, or ws URL from http://" + w.addr() + "/json/list)")
}
