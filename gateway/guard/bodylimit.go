package guard

import (
	"errors"
	"io"
	"sync"
)

// DefaultBodyLimit is the body size AcquireLimitedReader enforces when given
// a limit of zero or less: 30 MiB, as Supabase's edge runtime.
const DefaultBodyLimit = 30 << 20

// ErrBodyTooLarge is returned by LimitedReader.Read once the body has
// passed its limit.
var ErrBodyTooLarge = errors.New("guard: request body too large")

// LimitedReader reads a request body stream and fails with ErrBodyTooLarge
// as soon as the stream holds more than its limit, which is how a chunked
// upload with no Content-Length is cut off. A body of exactly the limit
// reads normally to io.EOF. It is not safe for concurrent use.
type LimitedReader struct {
	r    io.Reader
	left int64 // bytes still allowed
	err  error // sticky ErrBodyTooLarge
}

var limitedReaderPool = sync.Pool{New: func() any { return new(LimitedReader) }}

// AcquireLimitedReader returns a pooled reader that reads r and allows at
// most limit bytes (DefaultBodyLimit if limit ≤ 0). Give it back with
// ReleaseLimitedReader when the body is done.
func AcquireLimitedReader(r io.Reader, limit int64) *LimitedReader {
	if limit <= 0 {
		limit = DefaultBodyLimit
	}
	lr := limitedReaderPool.Get().(*LimitedReader)
	lr.r, lr.left, lr.err = r, limit, nil
	return lr
}

// ReleaseLimitedReader returns lr to the pool. lr must not be used after.
func ReleaseLimitedReader(lr *LimitedReader) {
	lr.r, lr.err = nil, nil
	limitedReaderPool.Put(lr)
}

// Read reads up to len(p) bytes. It asks the stream for one byte more than
// it still allows, so an over-long body is detected on the read that
// crosses the limit; the bytes within the limit are returned with
// ErrBodyTooLarge.
func (lr *LimitedReader) Read(p []byte) (int, error) {
	if lr.err != nil {
		return 0, lr.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if lr.left < int64(len(p)) {
		p = p[:lr.left+1] // one byte past the limit tells "more" from "exactly"
	}
	n, err := lr.r.Read(p)
	if int64(n) > lr.left {
		n = int(lr.left)
		lr.left = 0
		lr.err = ErrBodyTooLarge
		return n, lr.err
	}
	lr.left -= int64(n)
	return n, err
}
