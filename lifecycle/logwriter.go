package lifecycle

import (
	"bytes"
	"strings"
	"sync"

	"edgeway/observe"

	"github.com/rs/zerolog"
)

// bootTailLines is how many recent stderr lines are kept to explain a boot
// failure in the log.
const bootTailLines = 20

// lineWriter turns a worker's stdout or stderr into one log event per line,
// tagged with the function, pid and stream. It never blocks the worker: the
// pipe is always drained (an undrained pipe freezes Deno after 64 KiB).
type lineWriter struct {
	log     zerolog.Logger
	level   zerolog.Level
	maxLine int
	buf     []byte
	mask    func(string) string // secret masking; identity when nil

	mu   sync.Mutex
	tail []string // last lines, for boot errors
}

// Write is called by os/exec's copying goroutine, which recovers nothing:
// a panic (in masking, in logging) is recovered and counted, the line
// dropped, and the pipe still drained.
func (lw *lineWriter) Write(p []byte) (n int, err error) {
	n = len(p) // also what a recovered panic returns
	defer lw.recoverWrite()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := lw.maxLine - len(lw.buf)
			if room > 0 {
				lw.buf = append(lw.buf, p[:min(room, len(p))]...)
			}
			break
		}
		room := lw.maxLine - len(lw.buf)
		if room > 0 {
			lw.buf = append(lw.buf, p[:min(room, i)]...)
		}
		lw.emit()
		p = p[i+1:]
	}
	return n, nil
}

func (lw *lineWriter) recoverWrite() {
	if v := recover(); v != nil {
		lw.buf = lw.buf[:0]
		observe.Recovered(lw.log, observe.PanicProcess, v)
	}
}

// Flush logs a last unterminated line.
func (lw *lineWriter) Flush() {
	if len(lw.buf) > 0 {
		lw.emit()
	}
}

func (lw *lineWriter) emit() {
	line := strings.TrimRight(string(lw.buf), "\r")
	lw.buf = lw.buf[:0]
	if lw.mask != nil {
		line = lw.mask(line)
	}
	lw.mu.Lock()
	if len(lw.tail) == bootTailLines {
		copy(lw.tail, lw.tail[1:])
		lw.tail = lw.tail[:bootTailLines-1]
	}
	lw.tail = append(lw.tail, line)
	lw.mu.Unlock()
	lw.log.WithLevel(lw.level).Msg(line)
}

// Tail returns the last lines written, oldest first.
func (lw *lineWriter) Tail() string {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return strings.Join(lw.tail, "\n")
}
