package upstream

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// hungUp polls the socket, without waiting and without reading, for the
// peer's shutdown (POLLRDHUP: it closed or shut down its side; nginx also
// takes a half-close as the client leaving), a hang-up or an error.
func hungUp(rc syscall.RawConn) bool {
	gone := false
	rc.Control(func(fd uintptr) {
		fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		n, err := unix.Poll(fds[:], 0)
		gone = err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
	})
	return gone
}
