package upstream

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

func chunkReader(raw string) *bodyReader {
	return &bodyReader{c: &conn{br: bufio.NewReaderSize(strings.NewReader(raw), 4096)}, mode: framingChunked}
}

func TestChunkedDecoding(t *testing.T) {
	cases := []struct{ name, raw, want string }{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"several", "3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n", "abcdef"},
		{"extension", "3;name=v\r\nabc\r\n0\r\n\r\n", "abc"},
		{"upper hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
		{"trailers", "2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n", "hi"},
	}
	for _, c := range cases {
		b := chunkReader(c.raw)
		got, err := io.ReadAll(b)
		if err != nil || string(got) != c.want || !b.done {
			t.Errorf("%s: %q %v done=%v", c.name, got, err, b.done)
		}
	}
	for _, bad := range []string{"zz\r\nab\r\n", "3\r\nabcX\r\n", "\r\n", "3\r\nab"} {
		if _, err := io.ReadAll(chunkReader(bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// Buffered chunks are coalesced into one Read; nothing more is waited for.
func TestChunksAlreadyBufferedAreCoalesced(t *testing.T) {
	b := chunkReader("3\r\nabc\r\n2\r\nde\r\n")
	buf := make([]byte, 64)
	n, err := b.Read(buf)
	if err != nil || string(buf[:n]) != "abcde" {
		t.Fatalf("first read %q %v, want both buffered chunks", buf[:n], err)
	}
}

func TestHasCloseToken(t *testing.T) {
	for _, c := range []struct {
		v    string
		want bool
	}{
		{"close", true},
		{"Close", true},
		{"ClOsE", true},
		{"keep-alive, close", true},
		{" close ,x", true},
		{"upgrade,\tCLOSE", true},
		{"", false},
		{"keep-alive", false},
		{"closed", false},
		{"x-close", false},
		{"clos", false},
		{",,", false},
	} {
		if got := hasCloseToken([]byte(c.v)); got != c.want {
			t.Errorf("hasCloseToken(%q) = %v, want %v", c.v, got, c.want)
		}
	}
}
