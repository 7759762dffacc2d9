package guard

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLimitedReader(t *testing.T) {
	t.Parallel()
	const limit = 10
	tests := []struct {
		name    string
		body    int
		limit   int64
		oneByte bool // the stream yields one byte per Read
		bufSize int
		wantN   int
		wantErr error
	}{
		{name: "empty", body: 0, limit: limit, bufSize: 4, wantN: 0},
		{name: "under", body: limit - 1, limit: limit, bufSize: 4, wantN: limit - 1},
		{name: "exactly the limit", body: limit, limit: limit, bufSize: 4, wantN: limit},
		{name: "exactly, big buffer", body: limit, limit: limit, bufSize: 4096, wantN: limit},
		{name: "exactly, one byte at a time", body: limit, limit: limit, oneByte: true, bufSize: 4, wantN: limit},
		{name: "one over", body: limit + 1, limit: limit, bufSize: 4, wantN: limit, wantErr: ErrBodyTooLarge},
		{name: "one over, big buffer", body: limit + 1, limit: limit, bufSize: 4096, wantN: limit, wantErr: ErrBodyTooLarge},
		{name: "one over, buffer of the limit", body: limit + 1, limit: limit, bufSize: limit, wantN: limit, wantErr: ErrBodyTooLarge},
		{name: "one over, one byte at a time", body: limit + 1, limit: limit, oneByte: true, bufSize: 4, wantN: limit, wantErr: ErrBodyTooLarge},
		{name: "far over", body: 1 << 20, limit: limit, bufSize: 4096, wantN: limit, wantErr: ErrBodyTooLarge},
		{name: "zero limit means the default", body: 1 << 20, limit: 0, bufSize: 4096, wantN: 1 << 20},
		{name: "huge limit does not overflow", body: 100, limit: 1<<63 - 1, bufSize: 4096, wantN: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var src io.Reader = bytes.NewReader(bytes.Repeat([]byte("x"), tt.body))
			if tt.oneByte {
				src = iotest.OneByteReader(src)
			}
			lr := AcquireLimitedReader(src, tt.limit)
			defer ReleaseLimitedReader(lr)
			got, err := readAllWith(lr, tt.bufSize)
			if len(got) != tt.wantN || !errors.Is(err, tt.wantErr) {
				t.Fatalf("read %d bytes, err %v; want %d, %v", len(got), err, tt.wantN, tt.wantErr)
			}
			if tt.wantErr != nil {
				if n, err := lr.Read(make([]byte, 4)); n != 0 || err != ErrBodyTooLarge {
					t.Fatalf("Read after the error = %d, %v; want 0, ErrBodyTooLarge", n, err)
				}
			}
		})
	}
}

// readAllWith reads r to the end or the first error with a buffer of size.
func readAllWith(r io.Reader, size int) ([]byte, error) {
	var out []byte
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestLimitedReaderIsAReader(t *testing.T) {
	t.Parallel()
	const body = "hello, edge functions"
	lr := AcquireLimitedReader(strings.NewReader(body), int64(len(body)))
	defer ReleaseLimitedReader(lr)
	if err := iotest.TestReader(lr, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

func TestLimitedReaderPassesErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	lr := AcquireLimitedReader(iotest.ErrReader(boom), 10)
	defer ReleaseLimitedReader(lr)
	if _, err := lr.Read(make([]byte, 4)); err != boom {
		t.Fatalf("err = %v, want the stream's", err)
	}
	if n, err := lr.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty Read = %d, %v", n, err)
	}
}

func TestLimitedReaderReuse(t *testing.T) {
	t.Parallel()
	for i := range 100 {
		lr := AcquireLimitedReader(strings.NewReader("abcdef"), 3)
		_, err := io.ReadAll(lr)
		if err != ErrBodyTooLarge {
			t.Fatalf("round %d: err = %v", i, err)
		}
		ReleaseLimitedReader(lr)
		lr = AcquireLimitedReader(strings.NewReader("ab"), 3)
		if b, err := io.ReadAll(lr); err != nil || string(b) != "ab" {
			t.Fatalf("round %d: reused reader read %q, %v", i, b, err)
		}
		ReleaseLimitedReader(lr)
	}
}
