package e2e

import "io"

func io_Pipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }
