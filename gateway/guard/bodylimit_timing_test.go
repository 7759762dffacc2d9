package guard

import (
	"bytes"
	"testing"
)

// BenchmarkLimitedReader wraps, reads 4 KiB in one call and releases.
func BenchmarkLimitedReader(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 4096)
	src := bytes.NewReader(body)
	buf := make([]byte, 8192)
	for b.Loop() {
		src.Reset(body)
		lr := AcquireLimitedReader(src, DefaultBodyLimit)
		lr.Read(buf)
		ReleaseLimitedReader(lr)
	}
}
