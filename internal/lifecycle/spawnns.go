package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// A private /tmp without re-executing edgeway (--function-tmp-setup=thread,
// root only). The spawner's locked thread unshares its mount namespace
// (which also gives it a filesystem context of its own: root, working
// folder, umask), sets the namespace up as the helper would
// (mountPrivateTmp), starts the worker with cmd.Start (Go forks from the
// calling thread, so the child is born in that namespace) and enters the
// gateway's namespace again. The namespace lives as long as the worker.
//
// The rest of the gateway never sees it: other threads keep theirs, and
// the runtime never clones a new thread from a locked one (newm in
// runtime/proc.go, Go 1.26: an M with lockedExt != 0 asks the template
// thread, which LockOSThread starts before anything here ran; new threads
// would otherwise share this one's filesystem context, CLONE_FS). A user namespace cannot be entered by a multithreaded process, so
// this needs CAP_SYS_ADMIN in the gateway's own: root.

// privateTmp is one worker's namespace setup: dir bound on /tmp, binds
// bound back read-only.
type privateTmp struct {
	dir     string
	binds   []string
	lookErr error // cmd.Err before wrap set errPrivateTmpElsewhere
}

// errPrivateTmpElsewhere is the start error of a command wrapped for a
// private /tmp but started other than by its spawner.
var errPrivateTmpElsewhere = errors.New("this worker must start from the spawner that sets up its private /tmp")

// nsHome is where the spawner's thread returns after each private start:
// the gateway's mount namespace, root and working folder, opened on the
// thread before it ever left.
type nsHome struct {
	ns, root, cwd int
	rootStat      unix.Stat_t
	err           error // thread mode is unavailable
}

func openNSHome() *nsHome {
	h := &nsHome{ns: -1, root: -1, cwd: -1}
	open := func(path string, flags int) int {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
		if err != nil && h.err == nil {
			h.err = fmt.Errorf("open %s: %w", path, err)
		}
		return fd
	}
	h.ns = open("/proc/thread-self/ns/mnt", unix.O_RDONLY)
	h.root = open("/", unix.O_PATH|unix.O_DIRECTORY)
	h.cwd = open(".", unix.O_PATH|unix.O_DIRECTORY)
	if h.err == nil {
		if err := unix.Fstat(h.root, &h.rootStat); err != nil {
			h.err = fmt.Errorf("stat /: %w", err)
		}
	}
	return h
}

// back enters the gateway's namespace again. setns also moves the thread's
// root and working folder to the namespace's root: both are restored (a
// chrooted gateway stays chrooted) and checked.
func (h *nsHome) back() error {
	if err := unix.Setns(h.ns, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("setns to the gateway's mount namespace: %w", err)
	}
	if err := unix.Fchdir(h.root); err != nil {
		return fmt.Errorf("back to the root folder: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("back to the root folder: %w", err)
	}
	if err := unix.Fchdir(h.cwd); err != nil {
		return fmt.Errorf("back to the working folder: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		return fmt.Errorf("stat /: %w", err)
	}
	if st.Dev != h.rootStat.Dev || st.Ino != h.rootStat.Ino {
		return errors.New("the root folder is not the gateway's after setns")
	}
	return nil
}

// startPrivateTmp runs on the spawner's thread: cmd starts in a fresh
// mount namespace set up as tmp says (cmd nil: only set up, the probe).
// Whatever happens the thread goes back home; if it cannot, the spawner
// refuses every later start (s.broken) rather than fork a worker in a
// namespace that is not the gateway's.
func (s *spawner) startPrivateTmp(cmd *exec.Cmd, tmp *privateTmp) (err error) {
	if s.home.err != nil {
		return fmt.Errorf("private /tmp from the spawner's thread: %w", s.home.err)
	}
	if cmd != nil && cmd.Dir == "" {
		// The child would keep the thread's working folder, reached
		// through the host's mounts (under the covered /tmp, perhaps):
		// it must change to it by name, inside the namespace.
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("private /tmp: working folder: %w", err)
		}
		cmd.Dir = wd
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("private /tmp: new mount namespace: %w", err)
	}
	defer func() {
		rerr := s.home.back()
		if rerr == nil {
			rerr = s.failReturn
		}
		if rerr != nil {
			s.broken = rerr
			s.log.Error().Err(rerr).Msg("the thread that starts workers cannot return to the gateway's mount namespace: every later worker start is refused; restart edgeway (or use --function-tmp-setup=exec)")
			if err == nil && cmd == nil {
				err = rerr
			}
		}
	}()
	if err := mountPrivateTmp(tmp.dir, tmp.binds); err != nil {
		return fmt.Errorf("private /tmp: %w", err)
	}
	if cmd == nil {
		return nil
	}
	return cmd.Start()
}
