package e2e

import (
	"io"
	"time"
)

func io_Pipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }

func timeAfter(d time.Duration) <-chan time.Time { return time.After(d) }

// sleepPoll paces loops that poll /proc, for which there is no event.
func sleepPoll() { time.Sleep(20 * time.Millisecond) }
