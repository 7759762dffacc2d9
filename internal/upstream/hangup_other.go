//go:build !linux

package upstream

import "syscall"

// hungUp needs POLLRDHUP (Linux): elsewhere a hang-up is not detected.
func hungUp(syscall.RawConn) bool { return false }
