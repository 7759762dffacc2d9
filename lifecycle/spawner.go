package lifecycle

import (
	"os/exec"
	"runtime"
	"syscall"
)

// spawner starts processes from one locked OS thread. The kernel delivers
// PR_SET_PDEATHSIG when the *thread* that forked a child exits, so forking
// from arbitrary goroutines (whose threads the runtime may retire) could kill
// workers at random; this thread lives as long as the gateway.
type spawner struct {
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd   *exec.Cmd
	reply chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnRequest)}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	runtime.LockOSThread() // never unlocked: the thread must outlive every child
	for r := range s.reqs {
		r.reply <- r.cmd.Start()
	}
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
