package lifecycle

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// NamespaceHelperCommand is the hidden edgeway command a worker with a
// private /tmp starts as when the spawner's thread cannot set up its
// namespace (not root, or --function-tmp-setup=exec; see spawnns.go): the gateway re-executes itself in a new mount
// namespace (and, when not root, a user namespace mapping only its own
// uid and gid), the helper binds the worker's own folder on /tmp, binds
// back the paths under /tmp the worker needs (the runtime folder with its
// sockets, the functions, DENO_DIR, Deno), then executes Deno in place:
// the same pid, no capabilities left. Go cannot run code between clone and
// exec, hence the helper.
//
//	edgeway __worker-namespace <gateway's mount ns> <private dir> <n> <path>... -- <deno> <args>...
//
// With nothing after "--" it only sets up and exits 0 (the startup probe).
const NamespaceHelperCommand = "__worker-namespace"

// nsHelperFailed is the helper's exit code when the setup fails; its
// message goes to stderr, which the boot error shows.
const nsHelperFailed = 111

// RunNamespaceHelper is the helper's main. It returns only on failure or
// for a probe.
func RunNamespaceHelper(args []string, stderr io.Writer) int {
	if err := enterPrivateTmp(args); err != nil {
		fmt.Fprintf(stderr, "edgeway: private /tmp for the worker: %v\n", err)
		return nsHelperFailed
	}
	return 0
}

func enterPrivateTmp(args []string) error {
	// Capabilities are per thread: the thread that drops them must be the
	// one that executes Deno.
	runtime.LockOSThread()
	const usage = "usage: <gateway's mount namespace> <private dir> <n> <path>... -- <command> [<arg>]"
	if len(args) < 3 {
		return errors.New(usage)
	}
	// Run by hand (or by anything but the gateway's clone) it would cover
	// the host's /tmp: refuse unless in another mount namespace than the
	// gateway's (its ns link is passed: a process in a new user namespace
	// may not read its parent's).
	gatewayNS := args[0]
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil || gatewayNS == "" || self == gatewayNS {
		return errors.New("not in a mount namespace of its own (this command is edgeway's, started for its workers)")
	}
	args = args[1:]
	private := args[0]
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 || len(args) < 2+n+1 || args[2+n] != "--" {
		return errors.New(usage)
	}
	binds, argv := args[2:2+n], args[3+n:]
	cwd, _ := os.Getwd()
	if err := mountPrivateTmp(private, binds); err != nil {
		return err
	}
	if cwd != "" {
		os.Chdir(cwd) // the same folder, now reached through its bind
	}
	if len(argv) == 0 {
		return nil
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("drop capabilities: %w", err)
	}
	err = syscall.Exec(argv[0], argv, os.Environ())
	return fmt.Errorf("exec %s: %w", argv[0], err)
}

// mountPrivateTmp sets up the calling thread's fresh mount namespace: its
// mounts made private (nothing done here may reach the host's mount
// table), private bound on /tmp, binds bound back read-only. The
// namespace helper runs it after clone, the spawner's thread after
// unshare (see spawnns.go).
func mountPrivateTmp(private string, binds []string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	// Opened before /tmp is covered: they may lie under it.
	fds := make([]int, 0, len(binds))
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	for _, b := range binds {
		fd, err := unix.Open(b, unix.O_PATH|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			fd = -1 // nothing to reach
		} else if err != nil {
			return fmt.Errorf("open %s: %w", b, err)
		}
		fds = append(fds, fd)
	}
	if err := unix.Mount(private, "/tmp", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on /tmp: %w", private, err)
	}
	for i, b := range binds {
		if fds[i] < 0 {
			continue
		}
		if err := bindBack(fds[i], b); err != nil {
			return err
		}
	}
	return nil
}

// bindBack makes the file or folder open as fd reachable again at path,
// which now lies in the private /tmp.
func bindBack(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := os.MkdirAll(path, 0o700); err != nil {
			return fmt.Errorf("mount point %s: %w", path, err)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("mount point %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("mount point %s: %w", path, err)
		}
		f.Close()
	}
	if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(fd), path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s back: %w", path, err)
	}
	// Read-only: the worker may write anywhere in its /tmp, never into
	// these. The flags it inherits (nosuid, nodev, noexec) must be kept.
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return fmt.Errorf("statfs %s: %w", path, err)
	}
	if err := unix.Mount("", path, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|keptFlags(sfs.Flags), ""); err != nil {
		return fmt.Errorf("make %s read-only: %w", path, err)
	}
	return nil
}

// keptFlags turns statfs flags (ST_*) into the mount flags (MS_*) a
// read-only remount must repeat: in a user namespace the kernel refuses to
// drop nosuid, nodev, noexec or change the atime mode inherited from the
// host (and with no atime flag a remount means relatime).
func keptFlags(st int64) uintptr {
	var f uintptr
	for _, m := range []struct {
		st int64
		ms uintptr
	}{{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}} {
		if st&m.st != 0 {
			f |= m.ms
		}
	}
	switch {
	case st&unix.ST_NOATIME != 0:
		f |= unix.MS_NOATIME
	case st&unix.ST_RELATIME == 0:
		f |= unix.MS_STRICTATIME
	}
	return f
}

// gatewayMountNS is the gateway's own mount namespace, passed to the
// helper so that it can tell it runs in another one.
func gatewayMountNS() string {
	ns, _ := os.Readlink("/proc/self/ns/mnt")
	return ns
}

// namespaceAttr is how a worker with a private /tmp is cloned: a mount
// namespace; when not root also a user namespace mapping only the
// gateway's uid and gid to themselves, with CAP_SYS_ADMIN kept across the
// exec of the helper (which drops it before executing Deno).
func namespaceAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if uid := os.Geteuid(); uid != 0 {
		gid := os.Getegid()
		a.Cloneflags |= syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		a.GidMappingsEnableSetgroups = false
		a.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN}
	}
	return a
}
