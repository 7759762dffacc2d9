package gateway

import (
	"errors"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// Chunk extensions ("5;name=value") are skipped by fasthttp v1.74 one byte
// at a time, however long, and count against no limit: --max-body counts
// only the data. A client could send a chunk-size line of endless
// extensions (or endless tiny chunks' worth), holding a worker slot with
// no data for it. Deno's parser refuses a chunk-size line over 4 KiB;
// nginx accepts any. Here, the framing read between two pieces of a
// chunked body's data (chunk-size line and extensions, line ends, the
// trailer section) counts against maxChunkFraming, four times
// --max-header-bytes: a chunk line as long as a header block always passes,
// one longer than five of them always fails (in between it depends on how
// the bytes arrive), with 400 BAD_REQUEST and the connection closed, like
// any broken chunk.
//
// fasthttp keeps the chunk lines to itself, so the count is of the socket
// reads that fill its read buffer while the body streams (reads longer
// than the buffer go straight into the reader's slice and are data only),
// reset each time the body yields data (BodyData). Between two resets at
// most two buffers' worth of data is read besides the framing, and up to
// one buffer of the framing may have been read before the last reset.

// errChunkFraming ends the read of a chunked body whose framing outgrew
// maxChunkFraming; fasthttp reports it as a broken chunk.
var errChunkFraming = errors.New("gateway: chunk-size lines, extensions or trailers longer than the limit")

// chunkFramingRefused counts bodies cut off by the bound.
var chunkFramingRefused = metrics.NewCounter(`edgeway_client_chunk_framing_refused_total`)

// readFraming is Read while a chunked body streams and fasthttp fills its
// read buffer. The read that takes the count over the bound fails, its
// bytes dropped (the connection is closed after the 400): returned, they
// could hold the rest of an overlong line, and no further read would come
// to refuse it.
func (c *clientConn) readFraming(b []byte) (int, error) {
	if c.framing.Load() > c.set.maxChunkFraming {
		return 0, errChunkFraming
	}
	n, err := c.Conn.Read(b)
	if c.framing.Add(int64(n)) > c.set.maxChunkFraming {
		chunkFramingRefused.Inc()
		return 0, errChunkFraming
	}
	return n, err
}

// BodyData implements upstream.BodyProgress: the body stream yielded data,
// so the framing read before it was within bounds.
func (c *clientConn) BodyData() { c.framing.Store(0) }

// watchChunked starts counting the framing of ctx's body if it is chunked.
func watchChunked(ctx *fasthttp.RequestCtx) {
	if ctx.Request.Header.ContentLength() != -1 {
		return
	}
	if c := connOf(ctx); c != nil {
		c.framing.Store(0)
		c.flags.Or(connChunked)
	}
}

// unwatchChunked stops counting once the request is done, unless a
// background writer still reads the body (BodyDone stops it then).
func unwatchChunked(ctx *fasthttp.RequestCtx) {
	if c := connOf(ctx); c != nil && c.flags.Load()&(connChunked|connBodyInFlight) == connChunked {
		c.flags.And(^connChunked)
	}
}
