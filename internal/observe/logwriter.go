package observe

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// logDropped counts log lines dropped because the output did not keep up
// (a stuck or slow stderr pipe).
var logDropped = metrics.NewCounter("edgeway_log_dropped_total")

// BufferedWriter batches log lines in memory and writes them out from one
// goroutine, the flusher, every flush interval or as soon as flushAt bytes
// are waiting, so a log line per request costs a copy, not a syscall. Each
// Write is one whole log event (zerolog writes an event at once), so lines
// never interleave.
//
// Writers never wait on the output: the flusher takes the filled buffer
// and writes it without holding the writers' lock. When the output is
// slower than the logging (nobody reads the gateway's stderr), at most
// maxBuffered bytes wait; further lines are dropped and counted in
// edgeway_log_dropped_total, so logging cannot block a request or a
// worker's output, nor grow memory without bound.
type BufferedWriter struct {
	out         io.Writer
	flushAt     int
	maxBuffered int
	kick        chan struct{}
	stop        chan struct{}
	done        chan struct{}
	dropped     atomic.Uint64
	log         atomic.Pointer[zerolog.Logger] // reports drops and a panic in the flusher
	reported    uint64                         // drops already reported; the flusher's

	mu    sync.Mutex
	buf   []byte // lines waiting for the flusher
	spare []byte // the flusher's previous buffer, reused

	outMu sync.Mutex // one output write at a time (flusher, Flush)
}

// NewBufferedWriter starts the flusher. flushAt is the size that triggers a
// write before the interval ends; maxBuffered (raised to flushAt) bounds
// the bytes waiting for a slow output.
func NewBufferedWriter(w io.Writer, flushAt, maxBuffered int, interval time.Duration) *BufferedWriter {
	b := &BufferedWriter{out: w, flushAt: flushAt, maxBuffered: max(maxBuffered, flushAt),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushLoop(interval)
	return b
}

// SetLogger names the logger that reports dropped lines (once the output
// accepts lines again) and a panic in the flusher.
func (b *BufferedWriter) SetLogger(log zerolog.Logger) { b.log.Store(&log) }

func (b *BufferedWriter) logger() zerolog.Logger {
	if l := b.log.Load(); l != nil {
		return *l
	}
	return zerolog.Nop()
}

// Write buffers p, or drops it when maxBuffered bytes already wait. It
// never blocks on the output and never fails.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	if len(b.buf)+len(p) > b.maxBuffered {
		b.mu.Unlock()
		b.dropped.Add(1)
		logDropped.Inc()
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	full := len(b.buf) >= b.flushAt
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default: // a flush is already due
		}
	}
	return len(p), nil
}

// Dropped is the number of lines dropped so far.
func (b *BufferedWriter) Dropped() uint64 { return b.dropped.Load() }

// Flush writes out whatever is buffered. It waits for the output (writers
// do not); only the flusher and Close call it.
func (b *BufferedWriter) Flush() error {
	b.outMu.Lock()
	defer b.outMu.Unlock()
	b.mu.Lock()
	out := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.mu.Unlock()
	if len(out) == 0 {
		b.spare = out
		return nil
	}
	_, err := b.out.Write(out)
	b.mu.Lock()
	b.spare = out[:0]
	b.mu.Unlock()
	return err
}

// Close stops the flusher and writes out what is left, waiting for the
// output at most timeout: a stuck output must not keep the process from
// exiting.
func (b *BufferedWriter) Close(timeout time.Duration) error {
	close(b.stop)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-b.done:
	case <-t.C:
		return errStuck
	}
	flushed := make(chan error, 1)
	go func() { flushed <- b.guardedFlush() }()
	select {
	case err := <-flushed:
		return err
	case <-t.C:
		return errStuck
	}
}

var errStuck = errors.New("log output did not accept the last lines in time")

// flushLoop runs the flusher until Close, surviving a panic in a flush.
func (b *BufferedWriter) flushLoop(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-b.kick:
		case <-b.stop:
			return
		}
		if b.guardedFlush() == nil {
			b.reportDrops()
		}
	}
}

func (b *BufferedWriter) guardedFlush() (err error) {
	defer func() {
		if v := recover(); v != nil {
			Recovered(b.logger(), PanicLogFlusher, v)
			err = errPanicked
		}
	}()
	return b.Flush()
}

var errPanicked = errors.New("log flush panicked")

// reportDrops logs how many lines were dropped since the last report, once
// the output has taken a flush again.
func (b *BufferedWriter) reportDrops() {
	if d := b.dropped.Load(); d != b.reported {
		log := b.logger()
		log.Warn().Uint64("dropped", d-b.reported).Msg("log lines dropped: the log output did not keep up (edgeway_log_dropped_total)")
		b.reported = d
	}
}
