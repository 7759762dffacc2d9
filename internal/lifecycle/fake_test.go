package lifecycle

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/routable"
	"edgeway.dev/edgeway/internal/upstream"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// The tests below run a real Manager (run, tick, timers, watch) inside a
// synctest bubble, where time is virtual, against fake worker processes:
// a fake has a real upstream.Worker on a socket that does not exist, an
// exited channel the test closes to simulate an exit, and a net.Pipe control
// connection whose far end is a fake bootstrap answering "ping <id>" with
// "pong <id> <tasks>".

// testOptions are the server-wide settings the tests start from.
func testOptions() config.Options {
	return config.Options{
		BootTimeout:          15 * time.Second,
		ShutdownGrace:        10 * time.Second,
		CrashLoopThreshold:   5,
		CrashLoopWindow:      30 * time.Second,
		CrashLoopCooldown:    30 * time.Second,
		UpstreamMaxIdleConns: 2,
		UpstreamDialTimeout:  time.Second,
		UpstreamBufferSize:   4096,
		WorkerExitWait:       100 * time.Millisecond,
	}
}

// testConfig is a function config with every timer off.
func testConfig() config.FunctionConfig {
	return config.FunctionConfig{
		MinWorkers:               0,
		MaxWorkers:               4,
		MaxQueue:                 100,
		QueueTimeout:             10 * time.Second,
		Timeout:                  60 * time.Second,
		HealthCheckTimeout:       2 * time.Second,
		HealthCheckMaxFailures:   3,
		BackgroundTaskKeepsAlive: true,
		BackgroundTaskTimeout:    30 * time.Second,
	}
}

// harness is a Manager whose start function creates fake processes.
type harness struct {
	t     *testing.T
	m     *Manager
	begin time.Time // virtual time when the harness was made

	mu    sync.Mutex
	procs []*fakeProc // every process started, in order

	// hold makes boots wait for a value on gate (nil: ready, else: the
	// boot error); held counts boots waiting.
	hold atomic.Bool
	gate chan error
	held atomic.Int32

	wakes atomic.Int64 // calls of m.now: a few per manager loop

	// A manager that loops without time passing (a busy loop) would keep
	// the bubble from ever idling, so synctest.Wait would hang. m.now trips
	// a breaker after too many calls at one instant and parks the manager;
	// settle then fails the test.
	lastNow time.Time
	sameNow int
	tripped atomic.Bool
	breaker chan struct{}

	// bootDelay is how long a boot takes. The process is made when the
	// spawn starts (so its start and last activity are the spawn time).
	// Tests where requests wait for a new worker set it: real boots take
	// time, and the manager sees the requests' nudges before the worker.
	bootDelay time.Duration

	// configure, if set before run, adjusts every new fake process.
	configure func(*fakeProc)
}

// testMetrics makes a metrics set for one test and drops it afterwards.
func testMetrics(t *testing.T) *observe.FunctionMetrics {
	m := observe.NewFunctionMetrics("fn", observe.Gauges{})
	t.Cleanup(m.Unregister)
	return m
}

// newHarness must be called inside the synctest bubble.
func newHarness(t *testing.T, cfg config.FunctionConfig, opts config.Options) *harness {
	t.Helper()
	s := &Supervisor{opts: opts, log: zerolog.Nop()}
	fn := &config.Function{Name: "fn", Config: cfg}
	h := &harness{t: t, begin: time.Now(), gate: make(chan error), breaker: make(chan struct{})}
	h.m = newManager(s, &launchSpec{fn: fn}, testMetrics(t))
	h.m.start = h.start
	h.m.now = h.now
	t.Cleanup(h.teardown)
	return h
}

// teardown ends whatever a failed test left running, so that the bubble can
// finish and the other tests still run: it stops the manager, fails held
// boots and ends every fake process. A manager that still does not finish
// is fed one more exit event per process.
func (h *harness) teardown() {
	if h.tripped.Load() {
		close(h.breaker) // m.now stops checking: the loop may go on
	}
	h.hold.Store(false)
	stopped := make(chan struct{})
	go func() {
		h.m.stop()
		close(stopped)
	}()
	giveUp := time.After(24 * time.Hour)
	for {
		for _, f := range h.all() {
			f.exit()
		}
		select {
		case <-stopped:
			return
		case h.gate <- errors.New("teardown"):
			continue
		case <-time.After(time.Second):
			continue
		case <-giveUp:
		}
		break
	}
	h.t.Errorf("teardown: the manager did not finish after every process exited; status %+v", h.status())
	for _, f := range h.all() {
		go h.m.send(evExited{f.p})
	}
	select {
	case <-stopped:
	case <-time.After(time.Hour):
	}
}

// all is every process started so far.
func (h *harness) all() []*fakeProc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*fakeProc(nil), h.procs...)
}

// now is the manager's clock (m.now).
func (h *harness) now() time.Time {
	now := time.Now()
	h.wakes.Add(1)
	if h.tripped.Load() {
		return now
	}
	if now.Equal(h.lastNow) {
		h.sameNow++
	} else {
		h.lastNow, h.sameNow = now, 0
	}
	if h.sameNow > 100000 {
		h.tripped.Store(true)
		<-h.breaker
	}
	return now
}

// settle waits until every goroutine in the bubble is blocked.
func (h *harness) settle() {
	h.t.Helper()
	synctest.Wait()
	if h.tripped.Load() {
		h.t.Fatalf("at %v: the manager is in a busy loop (100000 wake-ups without time passing); status %+v", h.elapsed(), h.status())
	}
}

// run starts the Manager goroutine and lets it settle.
func (h *harness) run() {
	h.t.Helper()
	go h.m.run()
	h.settle()
}

func (h *harness) start(id uint64) (*process, error) {
	local, peer := net.Pipe()
	p := &process{
		id:      id,
		pid:     int(1000 + id),
		sock:    fmt.Sprintf("/nonexistent/edgeway-test/w%d.sock", id),
		ctl:     local,
		ctlr:    newControlReader(local),
		started: time.Now(),
		exited:  make(chan struct{}),
	}
	p.worker = upstream.NewWorker(h.m.pool, id, p.pid, p.sock, upstream.WorkerOptions{
		MaxIdleConns: 2,
		DialTimeout:  time.Second,
		BufferSize:   4096,
		ExitWait:     100 * time.Millisecond,
	})
	f := &fakeProc{h: h, p: p, peer: peer}
	p.fakeSignal = f.signal
	if h.configure != nil {
		h.configure(f)
	}
	if h.bootDelay > 0 {
		time.Sleep(h.bootDelay)
	}
	if h.hold.Load() {
		h.held.Add(1)
		err := <-h.gate
		h.held.Add(-1)
		if err != nil {
			local.Close()
			peer.Close()
			return nil, err
		}
	}
	go f.bootstrap()
	h.mu.Lock()
	h.procs = append(h.procs, f)
	h.mu.Unlock()
	return p, nil
}

// started is how many fake processes booted so far.
func (h *harness) started() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.procs)
}

// proc is the i-th process started.
func (h *harness) proc(i int) *fakeProc {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if i >= len(h.procs) {
		h.t.Fatalf("process %d was never started (%d started)", i, len(h.procs))
	}
	return h.procs[i]
}

// boot lets one held boot finish with err (nil: ready).
func (h *harness) boot(err error) {
	h.t.Helper()
	if h.held.Load() == 0 {
		h.t.Fatal("no boot is waiting")
	}
	h.gate <- err
	h.settle()
}

// elapsed is the virtual time since the harness was made.
func (h *harness) elapsed() time.Duration { return time.Since(h.begin) }

// sleepUntil advances virtual time to begin+d and lets the bubble settle.
func (h *harness) sleepUntil(d time.Duration) {
	h.t.Helper()
	if now := h.elapsed(); d < now {
		h.t.Fatalf("sleepUntil(%v): already at %v", d, now)
	}
	time.Sleep(d - h.elapsed())
	h.settle()
}

func (h *harness) status() routable.FunctionStatus { return h.m.Status() }

func (h *harness) snapshot() *upstream.Snapshot { return h.m.pool.Load() }

// published reports whether the snapshot routes to exactly fs, in any order.
func (h *harness) published(fs ...*fakeProc) bool {
	ws := h.snapshot().Workers
	if len(ws) != len(fs) {
		return false
	}
	for _, f := range fs {
		found := false
		for _, w := range ws {
			found = found || w == f.p.worker
		}
		if !found {
			return false
		}
	}
	return true
}

// expect checks the counts of the status.
func (h *harness) expect(running, starting, draining int) {
	h.t.Helper()
	st := h.status()
	if st.Running != running || st.Starting != starting || st.Draining != draining {
		h.t.Fatalf("at %v: status running/starting/draining = %d/%d/%d, want %d/%d/%d",
			h.elapsed(), st.Running, st.Starting, st.Draining, running, starting, draining)
	}
	if snap := h.snapshot(); len(snap.Workers) != running || snap.Total != running+starting {
		h.t.Fatalf("at %v: snapshot has %d workers, total %d; want %d, %d",
			h.elapsed(), len(snap.Workers), snap.Total, running, running+starting)
	}
}

// stop runs m.stop and fails if it does not return once everything exited.
func (h *harness) stop() {
	h.t.Helper()
	done := make(chan struct{})
	go func() {
		h.m.stop()
		close(done)
	}()
	h.settle()
	select {
	case <-done:
	default:
		h.t.Fatalf("at %v: stop did not return; status %+v", h.elapsed(), h.status())
	}
}

// acquire claims a slot as a request would.
func (h *harness) acquire() *upstream.Worker {
	h.t.Helper()
	w, err := h.m.pool.Acquire(time.Now().Add(time.Minute))
	if h.tripped.Load() {
		h.t.Fatalf("at %v: the manager went into a busy loop during Acquire; status %+v", h.elapsed(), h.status())
	}
	if err != nil {
		h.t.Fatalf("Acquire: %v", err)
	}
	return w
}

// release gives back a slot claimed by acquire, as a finished request does:
// the socket does not exist, so Proxy fails to dial and releases the slot
// (which also records the worker's last activity).
func (h *harness) release(w *upstream.Worker) {
	h.t.Helper()
	if err := giveBack(w); !errors.Is(err, upstream.ErrDial) {
		h.t.Fatalf("Proxy to a fake worker: %v, want ErrDial", err)
	}
	h.settle()
}

// giveBack ends a request on w without waiting for the bubble to settle.
func giveBack(w *upstream.Worker) error {
	var ctx fasthttp.RequestCtx
	return w.Proxy(&ctx, time.Now().Add(time.Second), upstream.BodyLimits{})
}

// fakeProc is a fake worker process and its bootstrap.
type fakeProc struct {
	h    *harness
	p    *process
	peer net.Conn // the bootstrap's end of the control connection

	tasks      atomic.Int32 // background tasks reported in pongs
	mute       atomic.Bool  // read pings but never answer
	pongDelay  atomic.Int64 // answer pings this late (a time.Duration)
	ignoreTerm atomic.Bool  // SIGTERM does not end the process
	pings      atomic.Int32
	terms      atomic.Int32
	kills      atomic.Int32
	exitOnce   sync.Once

	mu       sync.Mutex
	received []string // control lines other than pings, in order
}

// messages is every control line other than pings the fake received.
func (f *fakeProc) messages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.received...)
}

func (f *fakeProc) signal(sig syscall.Signal) {
	switch sig {
	case syscall.SIGTERM:
		f.terms.Add(1)
		if !f.ignoreTerm.Load() {
			f.exit()
		}
	case syscall.SIGKILL:
		f.kills.Add(1)
		f.exit()
	}
}

// exit simulates the process ending (by a signal or by itself).
func (f *fakeProc) exit() { f.exitOnce.Do(func() { close(f.p.exited) }) }

// crash ends the process unexpectedly and lets the manager react.
func (f *fakeProc) crash() {
	f.exit()
	f.h.settle()
}

func (f *fakeProc) hasExited() bool {
	select {
	case <-f.p.exited:
		return true
	default:
		return false
	}
}

// bootstrap answers pings until the manager closes its end (on exit). It
// always reads, so the manager's writes never block on the pipe.
func (f *fakeProc) bootstrap() {
	br := bufio.NewReader(f.peer)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		fields := strings.Fields(line)
		if len(fields) != 2 || fields[0] != "ping" {
			f.mu.Lock()
			f.received = append(f.received, strings.TrimSpace(line))
			f.mu.Unlock()
			continue
		}
		f.pings.Add(1)
		if f.mute.Load() {
			continue
		}
		if d := time.Duration(f.pongDelay.Load()); d > 0 {
			go func(id string) {
				select {
				case <-time.After(d):
					fmt.Fprintf(f.peer, "pong %s %d\n", id, f.tasks.Load())
				case <-f.p.exited:
				}
			}(fields[1])
			continue
		}
		fmt.Fprintf(f.peer, "pong %s %d\n", fields[1], f.tasks.Load())
	}
}

// sendBg reports n pending background tasks, as the bootstrap does when
// waitUntil tasks start or end.
func (f *fakeProc) sendBg(n int) {
	f.h.t.Helper()
	f.tasks.Store(int32(n))
	if _, err := fmt.Fprintf(f.peer, "bg %d\n", n); err != nil {
		f.h.t.Fatalf("send bg: %v", err)
	}
	f.h.settle()
}
