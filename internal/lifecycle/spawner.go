package lifecycle

import (
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/rs/zerolog"
)

// spawner starts processes from one locked OS thread. The kernel delivers
// PR_SET_PDEATHSIG when the *thread* that forked a child exits, so forking
// from arbitrary goroutines (whose threads the runtime may retire) could kill
// workers at random; this thread lives as long as the gateway.
//
// The same thread gives workers a private /tmp without re-executing
// edgeway (--function-tmp-setup=thread, see spawnns.go): it enters a fresh
// mount namespace, sets it up, forks the worker there and returns home.
type spawner struct {
	reqs chan spawnRequest
	log  zerolog.Logger

	// privateTmp holds the namespace setup workerBox.wrap asked for, by
	// command, until start takes it: wrap's callers need not change.
	privateTmp sync.Map // *exec.Cmd → *privateTmp

	// Owned by the loop's thread.
	home   *nsHome // the gateway's mount namespace, opened on the thread at startup
	broken error   // set when the thread could not return home: every later start is refused

	failReturn error // tests: a return home that "failed"
}

type spawnRequest struct {
	cmd   *exec.Cmd
	tmp   *privateTmp // nil: start cmd as it is
	reply chan error
}

func newSpawner(log zerolog.Logger) *spawner {
	s := &spawner{reqs: make(chan spawnRequest), log: log}
	go s.loop()
	return s
}

// loop serves start requests. A panic in one is recovered (the thread stays
// locked, and the loop goes on: if it ended, every later start would wait
// forever) and answered as a failed start.
func (s *spawner) loop() {
	runtime.LockOSThread() // never unlocked: the thread must outlive every child
	s.home = openNSHome()
	for r := range s.reqs {
		r.reply <- s.startOne(r)
	}
}

func (s *spawner) startOne(r spawnRequest) (err error) {
	defer func() {
		if v := recover(); v != nil {
			observe.Recovered(s.log, observe.PanicSpawner, v)
			err = fmt.Errorf("starting the process panicked: %v", v)
		}
	}()
	if s.broken != nil {
		// This thread may sit in a worker's namespace: whatever it forked
		// would see that worker's /tmp instead of the host's.
		return fmt.Errorf("refused: the process-starting thread is stuck outside the gateway's mount namespace: %w", s.broken)
	}
	if r.tmp != nil {
		return s.startPrivateTmp(r.cmd, r.tmp)
	}
	return r.cmd.Start()
}

// start runs cmd in its own process group, killed when the gateway dies,
// keeping the namespaces cmd may ask for, in a private /tmp when wrap
// asked for one on this thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig, cmd.SysProcAttr.Setpgid = syscall.SIGKILL, true
	var tmp *privateTmp
	if v, ok := s.privateTmp.LoadAndDelete(cmd); ok {
		tmp = v.(*privateTmp)
		cmd.Err = tmp.lookErr
	}
	return s.do(spawnRequest{cmd: cmd, tmp: tmp})
}

// probeTmp sets up a private /tmp on the thread and returns home without
// starting anything: whether thread mode works here.
func (s *spawner) probeTmp(tmp *privateTmp) error {
	return s.do(spawnRequest{tmp: tmp})
}

func (s *spawner) do(r spawnRequest) error {
	r.reply = make(chan error, 1)
	s.reqs <- r
	return <-r.reply
}
