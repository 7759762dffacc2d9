package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"regexp"
	"testing"

	"github.com/valyala/fasthttp"
)

// The upstream client's response framing is fuzzed differentially against
// net/http: whatever the gateway accepts from a worker, net/http must read
// the same way (status, body bytes, where the response ends, whether the
// connection stays usable). The gateway may refuse more than net/http only
// where a comment below argues it is safe.

// framing is a verdict on one response read from a byte stream.
type framingVerdict struct {
	ok     bool
	status int
	body   []byte
	end    int  // bytes of the stream the response took
	close  bool // the connection is not reusable after it
}

// consumed is how much of src a reader over it has taken.
func consumed(total int, src *bytes.Reader, br *bufio.Reader) int {
	return total - src.Len() - br.Buffered()
}

// pieceReader returns at most n bytes per Read, as a socket does when
// the worker's bytes arrive in pieces.
type pieceReader struct {
	r io.Reader
	n int
}

func (p *pieceReader) Read(b []byte) (int, error) {
	if len(b) > p.n {
		b = b[:p.n]
	}
	return p.r.Read(b)
}

// readAllSized reads r to its end with reads of size n (the decoder's
// coalescing depends on the buffer size).
func readAllSized(r io.Reader, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		m, err := r.Read(buf)
		out = append(out, buf[:m]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// tailProbe stands for the client connection of a streamed body (a
// TailHolder) and reads the stream: early is set when a read after the
// hold returned data, or a read that set it did not end the body.
type tailProbe struct {
	net.Conn
	b     *bodyReader
	holds int
	early bool
}

func (p *tailProbe) HoldTail()    { p.holds++ }
func (p *tailProbe) ReleaseTail() {}

func (p *tailProbe) Read(buf []byte) (int, error) {
	before := p.holds
	n, err := p.b.Read(buf)
	if before > 0 && (n > 0 || err != io.EOF) || p.holds > before && err != io.EOF {
		p.early = true
	}
	return n, err
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mineResponse reads raw as the gateway reads a worker's response. With
// whole > 0 a body of known length up to whole is read to its end with
// the head (--upstream-body-buffer); the worker's bytes then arrive in
// pieces of at most piece bytes, so that such a body is not all buffered
// with its head.
func mineResponse(raw []byte, head bool, readSize, whole, piece int) framingVerdict {
	src := bytes.NewReader(raw)
	var in io.Reader = src
	if whole > 0 {
		in = &pieceReader{r: src, n: piece}
	}
	br := bufio.NewReaderSize(in, 4096)
	var req fasthttp.Request
	if head {
		req.Header.SetMethod(fasthttp.MethodHead)
	}
	var resp fasthttp.Response
	stream, err := readResponse(&req, &resp, br, whole)
	if err != nil {
		return framingVerdict{}
	}
	v := framingVerdict{ok: true, status: resp.StatusCode(), close: workerWantsClose(&resp.Header)}
	if stream {
		tail := &tailProbe{}
		b := startStream(&resp, nil, &conn{br: br}, resp.Header.ContentLength(), !v.close, tail)
		tail.b = b
		body, err := readAllSized(tail, readSize)
		if err != nil || !b.done {
			return framingVerdict{}
		}
		// The end is held only once the body has ended, and only for a
		// chunked body (the framing fasthttp writes after it).
		if tail.early || tail.holds != btoi(b.mode == framingChunked) {
			return framingVerdict{ok: true, status: -1}
		}
		v.body, v.close = body, !b.reusable
	} else {
		v.body = append([]byte(nil), resp.Body()...)
	}
	v.end = consumed(len(raw), src, br)
	return v
}

// refResponse reads raw with net/http, skipping 1xx responses as the
// gateway does and refusing a 101 (the request asked for no upgrade).
func refResponse(raw []byte, head bool) framingVerdict {
	src := bytes.NewReader(raw)
	br := bufio.NewReaderSize(src, 4096)
	req := &http.Request{Method: http.MethodGet}
	if head {
		req.Method = http.MethodHead
	}
	for i := 0; ; i++ {
		resp, err := http.ReadResponse(br, req)
		if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
			return framingVerdict{}
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			if i >= maxInterimResponses {
				return framingVerdict{}
			}
			continue
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return framingVerdict{}
		}
		return framingVerdict{ok: true, status: resp.StatusCode, body: body, close: resp.Close, end: consumed(len(raw), src, br)}
	}
}

// bareLF reports an LF not preceded by CR. The gateway refuses chunk
// lines and trailers that end in a bare LF (RFC 9112 §7.1 and erratum
// 7633), where net/http's trailer reader (textproto) accepts them: refusing
// is safe (the response fails with 502 and the connection is closed, never
// misread), and Deno always sends CRLF. Inputs with a bare LF anywhere are
// therefore only checked in the direction that matters: what the gateway
// accepts, net/http reads the same way.
func bareLF(raw []byte) bool {
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			return true
		}
	}
	return false
}

// otherVersion reports a status line (of the response or of an interim
// one) that is not "HTTP/1.1 NNN ", which the gateway refuses and net/http
// reads: Deno only answers HTTP/1.1, and refusing is safe (502, connection
// closed).
func otherVersion(raw []byte) bool {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("HTTP/")) && !statusLineRE.Match(line) {
			return true
		}
	}
	return false
}

var statusLineRE = regexp.MustCompile(`^HTTP/1\.1 [1-5][0-9][0-9][ \r]`)

// repeatedContentLength reports more than one Content-Length field. The
// gateway refuses any repetition, where net/http accepts identical values
// (RFC 9112 §6.3 allows either): refusing is safe (502, connection closed)
// and Deno never repeats it.
func repeatedContentLength(raw []byte) bool {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	return len(contentLengthRE.FindAll(head, 2)) > 1
}

var contentLengthRE = regexp.MustCompile(`(?im)^content-length[ \t]*:`)

func compareFraming(t *testing.T, raw []byte, mine, ref framingVerdict) {
	t.Helper()
	switch {
	case mine.ok && !ref.ok:
		t.Fatalf("gateway accepts what net/http refuses: %q\ngateway: %+v", raw, mine)
	case !mine.ok && ref.ok && !bareLF(raw) && !otherVersion(raw) && !repeatedContentLength(raw):
		t.Fatalf("gateway refuses what net/http accepts: %q\nnet/http: %+v", raw, ref)
	// Closing a connection net/http would keep (a HEAD answer without
	// Content-Length: fasthttp expects a body until close) only costs a
	// dial; keeping one it would close could misread the next response.
	case mine.ok && (mine.status != ref.status || !bytes.Equal(mine.body, ref.body) || mine.end != ref.end || (!mine.close && ref.close)):
		t.Fatalf("framing differs: %q\ngateway:  %+v\nnet/http: %+v", raw, mine, ref)
	}
}

var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\nvary: Accept-Encoding\r\ncontent-length: 2\r\ndate: Thu, 03 Dec 2026 10:00:00 GMT\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
	"HTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\n\r\nuntil close",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nnot found",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
}

func FuzzResponseFraming(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false, uint8(7))
		f.Add([]byte(s), true, uint8(64))
	}
	f.Fuzz(func(t *testing.T, raw []byte, head bool, readSize uint8) {
		if len(raw) > 3000 {
			return
		}
		// Odd sizes also read bodies of known length whole, from a worker
		// whose bytes arrive in pieces of readSize+1.
		whole := 0
		if readSize%2 == 1 {
			whole = 64 << 10
		}
		mine := mineResponse(raw, head, int(readSize)+1, whole, int(readSize)+1)
		compareFraming(t, raw, mine, refResponse(raw, head))
	})
}

const chunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

// FuzzChunkedBody fuzzes the chunked decoder alone: the input is the body
// of a chunked response.
func FuzzChunkedBody(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n",
		"3;name=v\r\nabc\r\n0\r\n\r\n",
		"A\r\n0123456789\r\n0\r\n\r\n",
		"2\r\nhi\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n",
		"5 \r\nhello\r\n0\r\n\r\n",
		"5\nhello\n0\n\n",
		"5\r\nhelloXY0\r\n\r\n",
		"fffffffffffffff\r\n",
		"0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(3))
		f.Add([]byte(s), uint8(200))
	}
	f.Fuzz(func(t *testing.T, body []byte, readSize uint8) {
		if len(body) > 3000 {
			return
		}
		raw := append([]byte(chunkedHead), body...)
		mine := mineResponse(raw, false, int(readSize)+1, 0, 0)
		compareFraming(t, raw, mine, refResponse(raw, false))
	})
}
