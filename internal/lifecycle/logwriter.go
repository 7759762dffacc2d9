package lifecycle

import (
	"bytes"
	"strings"
	"sync"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/rs/zerolog"
)

// bootTailLines is how many recent stderr lines are kept to explain a boot
// failure in the log.
const bootTailLines = 20

// lineWriter turns a worker's stdout or stderr into one log event per line,
// tagged with the function, pid and stream. It never blocks the worker: the
// pipe is always drained (an undrained pipe freezes Deno after 64 KiB).
// A stack trace's frames ("    at ...") written with the line before them
// (one console.error(err), one uncaught error) stay in that line's event.
type lineWriter struct {
	log     zerolog.Logger // guarded by mu once the process runs (setPID)
	level   zerolog.Level
	maxLine int
	buf     []byte
	mask    func(string) string // secret masking; identity when nil
	event   []string            // the lines of the event being gathered
	size    int                 // their bytes

	// onLine, when set, hears every event after it is logged (the host's
	// Log hook, lifecycle/hooks.go); pid is 0 before setPID.
	onLine func(pid int, line string)

	mu   sync.Mutex
	tail []string // last lines, for boot errors
	pid  int
}

// setPID tags the writer's events with the worker's pid. os/exec's copying
// goroutine may already be writing (it starts inside cmd.Start, before the
// pid is known), hence the lock.
func (lw *lineWriter) setPID(pid int) {
	lw.mu.Lock()
	lw.log = lw.log.With().Int("pid", pid).Logger()
	lw.pid = pid
	lw.mu.Unlock()
}

func (lw *lineWriter) logger() zerolog.Logger {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.log
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
		lw.line()
		p = p[i+1:]
	}
	// What one write holds is complete: frames written later are not
	// waited for (no timer holds a line back).
	lw.emit()
	return n, nil
}

func (lw *lineWriter) recoverWrite() {
	if v := recover(); v != nil {
		lw.buf = lw.buf[:0]
		observe.Recovered(lw.logger(), observe.PanicProcess, v)
	}
}

// Flush logs a last unterminated line.
func (lw *lineWriter) Flush() {
	if len(lw.buf) > 0 {
		lw.line()
	}
	lw.emit()
}

// line takes the buffered line into the event being gathered: a stack
// frame joins it (up to maxLine bytes in all), any other line starts the
// next event.
func (lw *lineWriter) line() {
	line := strings.TrimRight(string(lw.buf), "\r")
	lw.buf = lw.buf[:0]
	if lw.mask != nil {
		line = lw.mask(line)
	}
	if len(lw.event) == 0 || !isStackFrame(line) || lw.size+1+len(line) > lw.maxLine {
		lw.emit()
	}
	lw.event = append(lw.event, line)
	lw.size += len(line) + 1
}

// isStackFrame reports a V8 stack frame line ("    at f (file:1:2)").
func isStackFrame(line string) bool {
	t := strings.TrimLeft(line, " \t")
	return len(t) < len(line) && strings.HasPrefix(t, "at ")
}

// emit logs the gathered event, if any.
func (lw *lineWriter) emit() {
	if len(lw.event) == 0 {
		return
	}
	msg := strings.Join(lw.event, "\n")
	lw.event, lw.size = lw.event[:0], 0
	lw.mu.Lock()
	if len(lw.tail) == bootTailLines {
		copy(lw.tail, lw.tail[1:])
		lw.tail = lw.tail[:bootTailLines-1]
	}
	lw.tail = append(lw.tail, msg)
	log, pid := lw.log, lw.pid
	lw.mu.Unlock()
	level := lw.level
	if level == zerolog.WarnLevel && strings.HasPrefix(msg, "Download ") {
		level = zerolog.InfoLevel // Deno's module download progress, not a problem
	}
	log.WithLevel(level).Msg(msg)
	if lw.onLine != nil {
		observe.Guard(log, observe.PanicHook, func() { lw.onLine(pid, msg) })
	}
}

// Tail returns the last lines written, oldest first.
func (lw *lineWriter) Tail() string {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return strings.Join(lw.tail, "\n")
}
