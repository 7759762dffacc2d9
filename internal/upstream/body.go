package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/valyala/fasthttp"
)

// bodyReader streams a worker's response body to the client. It decodes the
// worker's framing (Content-Length, chunked, or until close) and, when the
// server closes it, returns the connection to the pool if the body was read
// to its end and gives back the request's slot. Instances are pooled.
type bodyReader struct {
	w        *Worker
	c        *conn
	pc       *pconn // set for a pipelined connection (then c is &pc.conn)
	cl       *call
	tail     TailHolder // the client connection, when it can hold the end
	mode     framing
	left     int64 // bytes left: of the body (fixed) or of the chunk (chunked)
	done     bool  // the body ended cleanly
	reusable bool
	failed   bool
}

type framing uint8

const (
	framingFixed framing = iota
	framingChunked
	framingUntilClose
)

var bodyReaderPool = sync.Pool{New: func() any { return new(bodyReader) }}

var errBadChunk = errors.New("upstream: malformed chunked body from worker")

// TailHolder is implemented by the gateway's client connections. fasthttp
// frames a streamed body in chunks and flushes each one, the terminal
// "0\r\n" included, and writes the final CRLF after them: a chunked
// response that arrived whole from the worker left in three writes (head
// and data, "0\r\n", "\r\n"). Once the body has ended (nothing more is
// awaited from the worker, so no event can be delayed), HoldTail makes the
// connection keep what is written until ReleaseTail, which the stream's
// Close calls; the server's next write (that final CRLF) sends it all in
// one.
type TailHolder interface {
	HoldTail()
	ReleaseTail()
}

// startPipeStream streams the body of a pipelined response; the next call
// on the connection gets its turn when the body has been read. reusable is
// false when the response ends the connection.
func startPipeStream(resp *fasthttp.Response, w *Worker, pc *pconn, cl *call, contentLength int, reusable bool, client net.Conn) {
	b := startStream(resp, w, &pc.conn, contentLength, reusable, client)
	b.pc, b.cl = pc, cl
}

// startStream hands the rest of the response body to the server as a
// stream; client is the connection it is written to (may be nil).
func startStream(resp *fasthttp.Response, w *Worker, c *conn, contentLength int, reusable bool, client net.Conn) *bodyReader {
	b := bodyReaderPool.Get().(*bodyReader)
	*b = bodyReader{w: w, c: c, reusable: reusable}
	b.tail, _ = client.(TailHolder)
	size := contentLength
	switch {
	case contentLength >= 0:
		b.mode, b.left = framingFixed, int64(contentLength)
	case contentLength == -1:
		b.mode = framingChunked
	default: // -2: no framing, the body ends when the worker closes
		b.mode, b.reusable, size = framingUntilClose, false, -1
	}
	resp.SetBodyStream(b, size)
	return b
}

// Read is called by fasthttp while it writes the response, outside the
// gateway's recover: a panic here is recovered, counted as
// where="stream", and ends the body as broken (the client connection is
// closed, and Close gives back the worker connection and slot).
func (b *bodyReader) Read(p []byte) (n int, err error) {
	defer b.recoverRead(&n, &err)
	return b.read(p)
}

func (b *bodyReader) recoverRead(n *int, err *error) {
	if v := recover(); v != nil {
		recovered(observe.PanicStream, v)
		b.failed = true
		*n, *err = 0, io.ErrUnexpectedEOF
	}
}

func (b *bodyReader) read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.failed || b.c == nil {
		return 0, io.ErrUnexpectedEOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	switch b.mode {
	case framingFixed:
		if b.left == 0 {
			b.done = true
			return 0, io.EOF
		}
		if int64(len(p)) > b.left {
			p = p[:b.left]
		}
		n, err := b.c.br.Read(p)
		b.left -= int64(n)
		if err != nil {
			b.failed = true
			return n, io.ErrUnexpectedEOF
		}
		if b.left == 0 {
			b.done = true
			return n, io.EOF
		}
		return n, nil
	case framingChunked:
		return b.readChunks(p)
	default:
		n, err := b.c.br.Read(p)
		if err == io.EOF {
			b.done = true
			return n, io.EOF
		}
		if err != nil {
			b.failed = true
			return n, io.ErrUnexpectedEOF
		}
		return n, nil
	}
}

// readChunks decodes chunked framing into p. Besides the chunk it is in,
// it takes every following chunk already buffered (never waiting for
// more), so a burst of small chunks from Deno leaves in one client write
// and one flush instead of one each. An event that arrived alone still
// goes out alone, at once.
func (b *bodyReader) readChunks(p []byte) (int, error) {
	br := b.c.br
	n := 0
	for n < len(p) {
		if b.left == 0 {
			if n > 0 && !lineBuffered(br) {
				return n, nil
			}
			size, err := readChunkSize(br)
			if err != nil {
				b.failed = true
				return n, err
			}
			if size == 0 {
				if err := skipTrailers(br); err != nil {
					b.failed = true
					return n, err
				}
				b.done = true
				if b.tail != nil {
					b.tail.HoldTail()
				}
				return n, io.EOF
			}
			b.left = size
		}
		want := min(int64(len(p)-n), b.left)
		if n > 0 {
			want = min(want, int64(br.Buffered()))
			if want == 0 {
				return n, nil
			}
		}
		m, err := br.Read(p[n : n+int(want)])
		n += m
		b.left -= int64(m)
		if err == nil && b.left == 0 {
			err = readCRLF(br)
		}
		if err != nil {
			b.failed = true
			return n, io.ErrUnexpectedEOF
		}
	}
	return n, nil
}

// lineBuffered reports whether a whole line (a chunk header) is buffered.
func lineBuffered(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Buffered())
	return bytes.IndexByte(buf, '\n') >= 0
}

// Close is called by the server when the response is written or the client
// went away. An unfinished body leaves the connection unusable.
func (b *bodyReader) Close() error {
	if b.c == nil {
		return nil
	}
	if b.tail != nil {
		b.tail.ReleaseTail()
	}
	if b.pc != nil {
		if !b.done || !b.reusable {
			b.pc.fail()
		}
		b.w.finishPipe(b.pc, b.cl)
	} else {
		b.w.finish(b.c, b.done && b.reusable)
	}
	*b = bodyReader{}
	bodyReaderPool.Put(b)
	return nil
}

// The chunked decoder is strict (RFC 9112 §7.1): lines end in CRLF, a
// chunk-size line is hex digits followed by nothing, spaces and tabs, or an
// extension (";" and anything but CR and LF), and trailer fields are
// "token: value". FuzzChunkedBody checks it against net/http.

// maxChunkLine bounds a chunk-size line with its extension, as net/http does.
const maxChunkLine = 4096

// readChunkSize reads "<hex>[;ext]\r\n".
func readChunkSize(br *bufio.Reader) (int64, error) {
	var size int64
	digits := 0
	for {
		c, err := br.ReadByte()
		if err != nil {
			return 0, errBadChunk
		}
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		case c == '\r' && digits > 0:
			return size, readLF(br)
		case (c == ';' || c == ' ' || c == '\t') && digits > 0:
			return size, skipChunkExt(br, c == ';')
		default:
			return 0, errBadChunk
		}
		digits++
		// 15 hex digits: a size that fits an int64 with room to spare.
		// net/http takes 16; no real body comes near either.
		if digits > 15 {
			return 0, errBadChunk
		}
		size = size<<4 | int64(c)
	}
}

// skipChunkExt consumes the rest of a chunk-size line: an extension (ext,
// after ";": anything but CR and LF) or trailing spaces and tabs, then CRLF.
// Whitespace before ";" is refused, as net/http does.
func skipChunkExt(br *bufio.Reader, ext bool) error {
	for n := 0; n < maxChunkLine; n++ {
		c, err := br.ReadByte()
		switch {
		case err != nil || c == '\n':
			return errBadChunk
		case c == '\r':
			return readLF(br)
		case ext || c == ' ' || c == '\t':
		default:
			return errBadChunk
		}
	}
	return errBadChunk
}

func readLF(br *bufio.Reader) error {
	if c, err := br.ReadByte(); err != nil || c != '\n' {
		return errBadChunk
	}
	return nil
}

// readCRLF reads the CRLF that ends a chunk's data.
func readCRLF(br *bufio.Reader) error {
	if c, err := br.ReadByte(); err != nil || c != '\r' {
		return errBadChunk
	}
	return readLF(br)
}

// skipTrailers consumes trailer fields up to the empty line ending the
// body. A line longer than the reader's buffer is refused.
func skipTrailers(br *bufio.Reader) error {
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil || len(line) < 2 || line[len(line)-2] != '\r' {
			return errBadChunk
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			return nil
		}
		// A line starting with whitespace continues the field before
		// (obs-fold, RFC 9112 §5.2): trailers are discarded, so it is
		// skipped like net/http does.
		folded := !first && (line[0] == ' ' || line[0] == '\t')
		if !folded && !validTrailer(line) || folded && !validValue(line) {
			return errBadChunk
		}
	}
}

// validTrailer reports a "name: value" field line whose value holds no
// control byte but tab.
func validTrailer(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isTokenByte(line[0]) {
		return false
	}
	for _, c := range line[:colon] {
		// Spaces are let through in names, as net/http does: trailers
		// are discarded, and the line still ends where it ends.
		if !isTokenByte(c) && c != ' ' {
			return false
		}
	}
	return validValue(line[colon+1:])
}

// validValue reports a field value without control bytes but tab.
func validValue(v []byte) bool {
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// isTokenByte reports a tchar (RFC 9110 §5.6.2).
func isTokenByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return c < 0x80 && strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
