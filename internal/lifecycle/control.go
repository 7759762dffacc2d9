package lifecycle

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"

	"github.com/VictoriaMetrics/metrics"
)

// maxControlLine bounds one control message from a worker, newline
// included. The bootstrap's longest line ("pong <uint64> <int>") fits with
// room to spare; a worker that sends more is broken or hostile and is
// killed before the gateway buffers another byte of it.
const maxControlLine = 64

// maxBackgroundTasks bounds the task count a worker may report; it only
// has to fit an int on every platform.
const maxBackgroundTasks = 1 << 30

// Control message kinds from a worker.
const (
	ctlReady = "ready"
	ctlBg    = "bg"
	ctlPong  = "pong"
	// ctlPooled: a pre-booted worker waits for its function (prewarm.go);
	// only ever its first line.
	ctlPooled = "pooled"
)

// controlMsg is one parsed line from a worker's bootstrap.
type controlMsg struct {
	kind string
	id   uint64 // pong: the ping it answers
	n    int    // bg, pong: pending background tasks
}

var (
	errControlTooLong = fmt.Errorf("control message longer than %d bytes", maxControlLine)
	errControlUnknown = errors.New("unknown control message")
)

// newControlReader reads a worker's control connection in lines of at most
// maxControlLine bytes.
func newControlReader(r interface{ Read([]byte) (int, error) }) *bufio.Reader {
	return bufio.NewReaderSize(r, maxControlLine)
}

// readControl reads and parses one control line. Any error other than the
// connection's own (closed, deadline) is a protocol violation.
func readControl(br *bufio.Reader) (controlMsg, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return controlMsg{}, errControlTooLong
	}
	if err != nil {
		return controlMsg{}, err
	}
	return parseControl(line[:len(line)-1])
}

// parseControl parses a line without its newline. It is strict: exactly one
// space between fields, decimal numbers without signs or leading zeros
// beyond a single "0".
func parseControl(line []byte) (controlMsg, error) {
	fields := splitSpaces(line)
	switch {
	case len(fields) == 1 && string(fields[0]) == ctlReady:
		return controlMsg{kind: ctlReady}, nil
	case len(fields) == 1 && string(fields[0]) == ctlPooled:
		return controlMsg{kind: ctlPooled}, nil
	case len(fields) == 2 && string(fields[0]) == ctlBg:
		n, ok := parseCount(fields[1])
		if ok {
			return controlMsg{kind: ctlBg, n: n}, nil
		}
	case len(fields) == 3 && string(fields[0]) == ctlPong:
		id, idOK := parseUint(fields[1])
		n, nOK := parseCount(fields[2])
		if idOK && nOK {
			return controlMsg{kind: ctlPong, id: id, n: n}, nil
		}
	}
	return controlMsg{}, fmt.Errorf("%w %q", errControlUnknown, line)
}

// splitSpaces splits on single spaces; an empty field (two spaces, a
// leading or trailing space) makes the line invalid (nil).
func splitSpaces(line []byte) [][]byte {
	var out [][]byte
	start := 0
	for i := 0; i <= len(line); i++ {
		if i == len(line) || line[i] == ' ' {
			if i == start {
				return nil
			}
			out = append(out, line[start:i])
			start = i + 1
		}
	}
	return out
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	return n, err == nil
}

func parseCount(b []byte) (int, bool) {
	n, ok := parseUint(b)
	if !ok || n > maxBackgroundTasks {
		return 0, false
	}
	return int(n), true
}

// protocolErrors counts workers killed for breaking the control protocol.
func protocolErrors(function string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`edgeway_worker_protocol_errors_total{function=` + strconv.Quote(function) + `}`)
}
