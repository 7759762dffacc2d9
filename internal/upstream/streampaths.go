package upstream

import (
	"bytes"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// Deno's HTTP/1 server (hyper) does not dispatch the next request on a
// connection before the current response has ended (checked with a raw
// socket against `deno run`: a request pipelined behind an SSE response
// reached the handler when the stream ended). A request pipelined behind a
// response that streams therefore waits for the whole stream. So streams
// are kept off pipelined connections: requests that ask for an event stream
// are never pipelined, and a path whose pipelined response turned out to
// stream (chunked or until close: built from a ReadableStream) is not
// pipelined again (streamPaths).

// streamPathSlots bounds the remembered stream paths per function; the
// oldest is forgotten first.
const streamPathSlots = 32

// streamPaths is a small set of request path hashes, replaced round robin.
type streamPaths struct {
	used atomic.Int32 // slots filled, so the common case costs one load
	next atomic.Uint32
	hash [streamPathSlots]atomic.Uint64
}

// requestPath is the request target without its query.
func requestPath(req *fasthttp.Request) []byte {
	uri := req.Header.RequestURI()
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	return uri
}

// pathHash is FNV-1a, never 0 (the empty slot).
func pathHash(p []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range p {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h | 1
}

func (s *streamPaths) add(path []byte) {
	h := pathHash(path)
	if s.has(h) {
		return
	}
	i := (s.next.Add(1) - 1) % streamPathSlots
	s.hash[i].Store(h)
	if s.used.Load() < streamPathSlots {
		s.used.Add(1)
	}
}

func (s *streamPaths) has(h uint64) bool {
	for i := range s.hash {
		if s.hash[i].Load() == h {
			return true
		}
	}
	return false
}

// contains reports whether path was seen streaming.
func (s *streamPaths) contains(path []byte) bool {
	return s.used.Load() > 0 && s.has(pathHash(path))
}

var eventStream = []byte("text/event-stream")

// streams reports a request whose response is expected to stream: it
// asks for an event stream, or its path answered with a stream before.
func (p *Pool) streams(req *fasthttp.Request) bool {
	if bytes.Contains(req.Header.Peek(fasthttp.HeaderAccept), eventStream) {
		return true
	}
	return p.streamPaths.contains(requestPath(req))
}
