package lifecycle

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/rs/zerolog"
)

// spawner starts processes from one locked OS thread. The kernel delivers
// PR_SET_PDEATHSIG when the *thread* that forked a child exits, so forking
// from arbitrary goroutines (whose threads the runtime may retire) could kill
// workers at random; this thread lives as long as the gateway.
type spawner struct {
	reqs chan spawnRequest
	log  zerolog.Logger
}

type spawnRequest struct {
	cmd   *exec.Cmd
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
	for r := range s.reqs {
		r.reply <- s.startOne(r.cmd)
	}
}

func (s *spawner) startOne(cmd *exec.Cmd) (err error) {
	defer func() {
		if v := recover(); v != nil {
			observe.Recovered(s.log, observe.PanicSpawner, v)
			err = fmt.Errorf("starting the process panicked: %v", v)
		}
	}()
	return cmd.Start()
}

// start runs cmd in its own process group, killed when the gateway dies,
// keeping the namespaces cmd may ask for.
func (s *spawner) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig, cmd.SysProcAttr.Setpgid = syscall.SIGKILL, true
	reply := make(chan error, 1)
	s.reqs <- spawnRequest{cmd: cmd, reply: reply}
	return <-reply
}
