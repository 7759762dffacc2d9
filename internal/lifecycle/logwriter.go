package lifecycle

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/rs/zerolog"
)

// bootTailLines is how many recent events are kept to explain a boot
// failure.
const bootTailLines = 20

// Console tags: the bootstrap starts every line a function prints through
// console.log/info/debug/warn/error with
//
//	"\x1e" <the worker's log token> <level byte> <request id> <terminator>
//
// level byte: d, i, w or e, upper case when the output ends with " "
// tagEnd (a last argument, dropped; not after a format string, which
// might take that argument: such output ends with its write); request id:
// empty outside a request, else printable ASCII without '%' (at most
// maxTaggedRequestID bytes); terminator: tagText (the text follows) or
// tagSpace (one space follows, which is dropped: console's separator
// after a non-string first argument). The token is
// random per worker and reaches the bootstrap in the environment (deleted
// before the function's code runs), so a line the function writes to
// stdout itself cannot pass for a console line. See README, "Worker
// output".
const (
	tagStart           = '\x1e'
	tagText            = '\x1f'
	tagSpace           = '\x1d'
	tagEnd             = "\x1c"
	maxTaggedRequestID = 128
)

// lineWriter turns a worker's stdout or stderr into log events, tagged
// with the function, pid and stream. It never blocks the worker: the pipe
// is always drained (an undrained pipe freezes Deno after 64 KiB).
//
// An event is one line, or several gathered:
//   - a console call's output (tagged): its lines up to its end mark (a
//     multi-line object, an error's stack; a pipe read may split it), or,
//     without one, the lines of its write;
//   - continuation lines (starting with a space or a tab: stack frames,
//     the caret under a source line) join the event before them when they
//     come in the same write or within window of it;
//   - Deno's own "error: ..." block (an uncaught error: headline, source
//     line, caret, frames, written in several writes) gathers every line
//     that comes within window.
//
// An event holds at most maxLine bytes; a longer line is cut, and a line
// that would make an event longer starts the next one.
type lineWriter struct {
	mu      sync.Mutex
	log     zerolog.Logger // tagged with the pid once the process runs (setPID)
	level   zerolog.Level  // of an untagged line
	stderr  bool           // Deno's own messages come here: classify them
	maxLine int
	window  time.Duration       // how long an event waits for continuation lines; 0: it ends with its write
	tag     string              // tagStart + the worker's log token; "" accepts no tags
	mask    func(string) string // secret masking; identity when nil

	buf   []byte
	cut   bool    // the line in buf was longer than maxLine
	last2 [2]byte // the line's last two bytes, cut or not
	ev    pendingEvent
	write uint64      // counts Writes: tells lines of the same write
	timer *time.Timer // logs the event at due, window after the last write
	due   time.Time
	tail  []string

	// onLine, when set, hears every event after it is logged (the host's
	// Log hook, lifecycle/hooks.go); pid is 0 before setPID. It is called
	// with mu held, so it must not block (the server's hook dispatcher
	// only queues).
	onLine func(pid int, line string)
	pid    int
}

// pendingEvent is the event being gathered.
type pendingEvent struct {
	lines     []string
	size      int
	level     zerolog.Level
	requestID string
	console   bool   // a console call's output, not yet ended
	endMark   bool   // ... which ends with its end mark
	denoError bool   // Deno's "error: ..." block
	write     uint64 // the write its last line came in
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

// Write is called by os/exec's copying goroutine, which recovers nothing:
// a panic (in masking, in logging) is recovered and counted, the line
// dropped, and the pipe still drained.
func (lw *lineWriter) Write(p []byte) (n int, err error) {
	n = len(p) // also what a recovered panic returns
	lw.mu.Lock()
	defer lw.mu.Unlock()
	defer lw.recoverWrite()
	lw.write++
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			lw.take(p)
			break
		}
		lw.take(p[:i])
		lw.line()
		p = p[i+1:]
	}
	if len(lw.ev.lines) == 0 {
		return n, nil
	}
	if lw.window <= 0 {
		lw.emit()
		return n, nil
	}
	// The event waits for more of its lines until window passes with no
	// write.
	lw.due = time.Now().Add(lw.window)
	if lw.timer == nil {
		lw.timer = time.AfterFunc(lw.window, lw.timeUp)
	} else {
		lw.timer.Reset(lw.window)
	}
	return n, nil
}

// timeUp logs the gathered event once it is due (a firing that a later
// write has pushed back does nothing: the timer fires again).
func (lw *lineWriter) timeUp() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	defer lw.recoverWrite()
	if !time.Now().Before(lw.due) {
		lw.emit()
	}
}

// take adds part of a line to buf, up to maxLine bytes, and remembers
// whether the line was cut and its last two bytes (an end mark the cut
// dropped still ends its console call).
func (lw *lineWriter) take(part []byte) {
	room := lw.maxLine - len(lw.buf)
	if len(part) > room {
		lw.cut = true
	}
	if room > 0 {
		lw.buf = append(lw.buf, part[:min(room, len(part))]...)
	}
	for _, c := range part[max(0, len(part)-2):] {
		lw.last2[0], lw.last2[1] = lw.last2[1], c
	}
}

// recoverWrite runs deferred with mu held.
func (lw *lineWriter) recoverWrite() {
	if v := recover(); v != nil {
		lw.buf = lw.buf[:0]
		lw.ev = pendingEvent{}
		observe.Recovered(lw.log, observe.PanicProcess, v)
	}
}

// Flush logs what is still gathered and a last unterminated line.
func (lw *lineWriter) Flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	defer lw.recoverWrite()
	lw.write++
	if len(lw.buf) > 0 {
		lw.line()
	}
	if lw.timer != nil {
		lw.timer.Stop()
	}
	lw.emit()
}

// line takes the buffered line into the event being gathered, or into a
// new one.
func (lw *lineWriter) line() {
	line := strings.TrimRight(string(lw.buf), "\r")
	cutEnd := lw.cut && lw.last2 == [2]byte{' ', tagEnd[0]}
	lw.buf, lw.cut, lw.last2 = lw.buf[:0], false, [2]byte{}
	if lw.mask != nil {
		line = lw.mask(line)
	}
	if text, level, rid, endMark, ok := lw.untag(line); ok {
		lw.emit()
		lw.ev = pendingEvent{level: level, requestID: rid, console: true, endMark: endMark}
		lw.consoleLine(text, cutEnd)
		return
	}
	ev := &lw.ev
	if ev.console && (ev.endMark || ev.write == lw.write) {
		if ev.size+1+len(line) > lw.maxLine { // too long: it goes on in the next event
			next := pendingEvent{level: ev.level, requestID: ev.requestID, console: true, endMark: ev.endMark}
			lw.emit()
			lw.ev = next
		}
		lw.consoleLine(line, cutEnd)
		return
	}
	joins := len(ev.lines) > 0 &&
		(ev.denoError || (isContinuation(line) && (ev.write == lw.write || lw.window > 0)))
	if joins && ev.size+1+len(line) <= lw.maxLine {
		lw.add(line)
		return
	}
	if joins { // too long: the rest goes on in the next event, as it was
		level, rid, denoError := ev.level, ev.requestID, ev.denoError
		lw.emit()
		lw.ev = pendingEvent{level: level, requestID: rid, denoError: denoError}
		lw.add(line)
		return
	}
	lw.emit()
	lw.ev = pendingEvent{level: lw.level}
	if lw.stderr {
		lw.ev.level, lw.ev.denoError = classifyDenoLine(line, lw.level)
	}
	lw.add(line)
}

// consoleLine adds a line of a console call's output; its end mark (or
// cutEnd: the one cut off a long line) logs the event.
func (lw *lineWriter) consoleLine(text string, cutEnd bool) {
	end := false
	if lw.ev.endMark {
		if cutEnd {
			end = true
		} else if text == tagEnd {
			text, end = "", true
		} else if t, ok := strings.CutSuffix(text, " "+tagEnd); ok {
			text, end = t, true
		}
	}
	lw.add(text)
	if end {
		lw.emit()
	}
}

func (lw *lineWriter) add(line string) {
	lw.ev.lines = append(lw.ev.lines, line)
	lw.ev.size += len(line) + 1
	lw.ev.write = lw.write
}

// untag parses a console tag at the start of line (after the spaces of
// console.group's indentation, which stay): the text after it, the level
// and request id it names. A line without this worker's token is
// untagged, whatever it starts with.
func (lw *lineWriter) untag(line string) (text string, level zerolog.Level, rid string, endMark, ok bool) {
	indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
	if lw.tag == "" || !strings.HasPrefix(line[len(indent):], lw.tag) {
		return "", 0, "", false, false
	}
	rest := line[len(indent)+len(lw.tag):]
	if rest == "" {
		return "", 0, "", false, false
	}
	l := rest[0]
	if endMark = 'A' <= l && l <= 'Z'; endMark {
		l += 'a' - 'A'
	}
	switch l {
	case 'd':
		level = zerolog.DebugLevel
	case 'i':
		level = zerolog.InfoLevel
	case 'w':
		level = zerolog.WarnLevel
	case 'e':
		level = zerolog.ErrorLevel
	default:
		return "", 0, "", false, false
	}
	rest = rest[1:]
	end := strings.IndexAny(rest, string([]byte{tagText, tagSpace}))
	if end < 0 || end > maxTaggedRequestID {
		return "", 0, "", false, false
	}
	for i := 0; i < end; i++ {
		if c := rest[i]; c < 0x21 || c > 0x7e || c == '%' {
			return "", 0, "", false, false
		}
	}
	rid, text = rest[:end], rest[end+1:]
	if rest[end] == tagSpace {
		text = strings.TrimPrefix(text, " ")
	}
	return indent + text, level, rid, endMark, true
}

// isContinuation reports a line that goes on the one before: a stack frame
// ("    at f (file:1:2)"), the caret under a source line, an indented dump.
func isContinuation(line string) bool {
	return line != "" && (line[0] == ' ' || line[0] == '\t')
}

// classifyDenoLine gives an untagged stderr line its level: Deno's fatal
// "error: ..." (which opens a block), its "Warning ..." and its module
// download progress ("Download https://...", one line per file on a first
// boot: progress, not a problem). Anything else keeps the stream's level.
func classifyDenoLine(line string, def zerolog.Level) (zerolog.Level, bool) {
	switch {
	case strings.HasPrefix(line, "error: "):
		return zerolog.ErrorLevel, true
	case strings.HasPrefix(line, "Warning "):
		return zerolog.WarnLevel, false
	case strings.HasPrefix(line, "Download "):
		return zerolog.DebugLevel, false
	}
	return def, false
}

// emit logs the gathered event, if any. mu is held.
func (lw *lineWriter) emit() {
	ev := &lw.ev
	if len(ev.lines) == 0 {
		return
	}
	msg := strings.Join(ev.lines, "\n")
	if len(lw.tail) == bootTailLines {
		copy(lw.tail, lw.tail[1:])
		lw.tail = lw.tail[:bootTailLines-1]
	}
	lw.tail = append(lw.tail, msg)
	e := lw.log.WithLevel(ev.level)
	if ev.requestID != "" {
		e = e.Str("request_id", ev.requestID)
	}
	*ev = pendingEvent{lines: ev.lines[:0]}
	e.Msg(msg)
	if lw.onLine != nil {
		observe.Guard(lw.log, observe.PanicHook, func() { lw.onLine(lw.pid, msg) })
	}
}

// Tail returns the last events logged, oldest first.
func (lw *lineWriter) Tail() string {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return strings.Join(lw.tail, "\n")
}

// BootError returns the headline of the last "error: ..." event Deno
// wrote (without "error: "), or "": the one line a boot failure's summary
// repeats from the output logged before it.
func (lw *lineWriter) BootError() string {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	for i := len(lw.tail) - 1; i >= 0; i-- {
		if msg, ok := strings.CutPrefix(lw.tail[i], "error: "); ok {
			first, _, _ := strings.Cut(msg, "\n")
			return first
		}
	}
	return ""
}
