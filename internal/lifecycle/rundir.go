package lifecycle

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
)

// A gateway killed with SIGKILL cannot remove its runtime folder (sockets,
// import maps, the bootstrap). Each folder records its owner, the pid and
// the process's start time (a pid alone may have been reused), in
// ownerFile; at startup folders whose owner is gone are removed. A folder
// with no owner record (being created right now, or made by an older
// version) is left alone: a live gateway's folder is never removed.
const (
	runDirPrefix = "edgeway-"
	ownerFile    = "owner"
)

// writeOwner records the current process as the owner of runDir.
func writeOwner(runDir string) error {
	start, err := processStart(os.Getpid())
	if err != nil {
		return fmt.Errorf("runtime folder owner: %w", err)
	}
	rec := strconv.Itoa(os.Getpid()) + " " + start + "\n"
	if err := os.WriteFile(filepath.Join(runDir, ownerFile), []byte(rec), 0o400); err != nil {
		return fmt.Errorf("runtime folder owner: %w", err)
	}
	return nil
}

// processStart reads a process's start time (clock ticks since boot, field
// 22 of /proc/<pid>/stat).
func processStart(pid int) (string, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	start, ok := statStartTime(stat)
	if !ok {
		return "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return start, nil
}

// statStartTime finds the start time in a /proc/<pid>/stat line. The
// command name (field 2) may hold spaces and parentheses: fields are
// counted after its last ')'.
func statStartTime(stat []byte) (string, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", false
	}
	fields := strings.Fields(string(stat[i+1:]))
	const startField = 22 - 3 // fields[0] is field 3
	if len(fields) <= startField {
		return "", false
	}
	start := fields[startField]
	if _, err := strconv.ParseUint(start, 10, 64); err != nil {
		return "", false
	}
	return start, true
}

// ownerGone reports whether the owner recorded in runDir has exited; false
// when there is no readable record.
func ownerGone(runDir string) bool {
	rec, err := os.ReadFile(filepath.Join(runDir, ownerFile))
	if err != nil {
		return false
	}
	f := strings.Fields(string(rec))
	if len(f) != 2 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return false
	}
	start, err := processStart(pid)
	if err != nil {
		return os.IsNotExist(err) // no such process
	}
	return start != f[1] // the pid now names another process
}

// RemoveStaleRunDirs removes the runtime folders in the temporary folder
// that belong to this user and whose owner process is gone, and returns
// the paths removed.
func RemoveStaleRunDirs(log zerolog.Logger) []string {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), runDirPrefix+"*"))
	var removed []string
	for _, dir := range dirs {
		info, err := os.Lstat(dir)
		if err != nil || !info.IsDir() {
			continue
		}
		if st, ok := info.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
			continue
		}
		if !ownerGone(dir) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Warn().Err(err).Str("dir", dir).Msg("cannot remove a stale runtime folder")
			continue
		}
		log.Info().Str("dir", dir).Msg("removed the runtime folder of a gateway that is gone")
		removed = append(removed, dir)
	}
	return removed
}

// longestWorkerID is the widest worker id a socket name may carry (ids
// are a uint64 counter).
const longestWorkerID = "18446744073709551615"

// checkSocketPaths refuses a runtime folder whose worker sockets would not
// fit in sun_path: binding or connecting would fail for every worker, and
// every request with it ("cannot connect to worker"). It checks the
// longest name a worker may get, as the worker binds it and, with a
// private /tmp, as the gateway reaches it from outside the worker's box.
func checkSocketPaths(runDir string, sb *sandbox) error {
	longest := filepath.Join(runDir, "c"+longestWorkerID+".sock")
	if sb != nil && sb.tmp == config.TmpPrivate && underTmp(longest) {
		box := &workerBox{private: true, tmpDir: filepath.Join(runDir, "tmp-w"+longestWorkerID)}
		if h := box.hostPath(longest); len(h) > len(longest) {
			longest = h
		}
	}
	if len(longest) < maxSocketPath {
		return nil
	}
	return fmt.Errorf("runtime folder %s (in TMPDIR %s) is too long for Unix sockets: a worker socket path may take %d bytes (%s), over the %d bytes sun_path allows (its NUL included); set TMPDIR to a shorter folder, e.g. TMPDIR=/var/tmp",
		runDir, os.TempDir(), len(longest), longest, maxSocketPath-1)
}
