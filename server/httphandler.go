package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// HTTPHandler returns the gateway as a net/http handler, to mount in a
// host's server next to its own routes, under a prefix with
// http.StripPrefix:
//
//	mux.Handle("/fn/", http.StripPrefix("/fn", srv.HTTPHandler()))
//
// serves /fn/hello as the gateway serves /hello (and /fn/functions/v1/hello
// as /functions/v1/hello). The function sees the path after the prefix.
//
// Each request is converted to the gateway's (fasthttp) form and its
// response copied back. Request bodies stream to the worker as net/http
// reads them; response bodies stream back as the worker writes them, each
// piece flushed. Limits of this path, compared with the gateway's own
// listener or Handler:
//   - the host's http.Server owns the connection: its ReadTimeout,
//     ReadHeaderTimeout, WriteTimeout and MaxHeaderBytes apply, not the
//     gateway's client-connection flags (--read-header-timeout,
//     --client-write-timeout, --max-client-conns ...); the gateway's body
//     limits (--max-body, --body-read-timeout) and function timeouts do;
//   - net/http has parsed the request already, so the gateway's checks of
//     the raw header block (ambiguous framing, obs-fold) are net/http's,
//     and X-Forwarded-For is not read (the client address is the
//     connection's, r.RemoteAddr, even from a --trusted-proxies peer);
//   - a WebSocket upgrade takes the connection over (http.Hijacker): the
//     handshake and the session are served by the gateway on it, and the
//     connection closes when the session ends (or after a refused
//     upgrade). A ResponseWriter that cannot hijack gets 501.
func (s *Server) HTTPHandler() http.Handler {
	h := &httpAdapter{handler: s.gw.Handler(), logger: fasthttpLogger{s}}
	h.upgrades = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			h.handler(ctx)
			if !ctx.Hijacked() {
				ctx.SetConnectionClose() // the connection was the host's: nothing more is read from it
			}
		},
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		ReadTimeout:           s.opts.ReadHeaderTimeout,
		Logger:                h.logger,
	}
	return h
}

type fasthttpLogger struct{ s *Server }

func (l fasthttpLogger) Printf(format string, args ...any) { l.s.log.Debug().Msgf(format, args...) }

type httpAdapter struct {
	handler  fasthttp.RequestHandler
	upgrades *fasthttp.Server // serves hijacked upgrade connections
	logger   fasthttpLogger
}

func (a *httpAdapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isUpgrade(r) {
		a.serveUpgrade(w, r)
		return
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init2(&addrConn{remote: remoteAddr(r.RemoteAddr), local: localAddr(r)}, a.logger, false)
	ctx.Response.Header.SetNoDefaultContentType(true)
	req := &ctx.Request
	req.Header.SetMethod(r.Method)
	req.Header.SetRequestURI(r.URL.RequestURI())
	req.Header.SetHost(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	switch {
	case r.ContentLength > 0:
		req.SetBodyStream(r.Body, int(r.ContentLength))
	case r.ContentLength < 0: // chunked: length unknown
		req.SetBodyStream(r.Body, -1)
	}
	if r.Method == http.MethodHead {
		ctx.Response.SkipBody = true
	}
	a.handler(ctx)
	writeResponse(w, &ctx.Response)
}

// streamBuffers carry streamed response bodies to net/http, pooled rather
// than allocated per response.
var streamBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeResponse copies a fasthttp response to w, streaming a body stream.
func writeResponse(w http.ResponseWriter, resp *fasthttp.Response) {
	h := w.Header()
	for k, v := range resp.Header.All() {
		switch string(k) {
		case fasthttp.HeaderContentLength, fasthttp.HeaderTransferEncoding, fasthttp.HeaderConnection:
			continue
		}
		h.Add(string(k), string(v))
	}
	if !resp.IsBodyStream() {
		body := resp.Body()
		n := len(body)
		if resp.SkipBody { // HEAD: the length a GET would have
			n, body = resp.Header.ContentLength(), nil
		}
		if n >= 0 {
			h.Set(fasthttp.HeaderContentLength, strconv.Itoa(n))
		}
		w.WriteHeader(resp.StatusCode())
		w.Write(body)
		return
	}
	defer resp.CloseBodyStream() // gives the worker connection back
	if n := resp.Header.ContentLength(); n >= 0 {
		h.Set(fasthttp.HeaderContentLength, strconv.Itoa(n))
	}
	w.WriteHeader(resp.StatusCode())
	rc := http.NewResponseController(w)
	rc.Flush()
	bp := streamBuffers.Get().(*[]byte)
	defer streamBuffers.Put(bp)
	buf := *bp
	src := resp.BodyStream()
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the client left: closing the stream frees the worker
			}
			rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

func isUpgrade(r *http.Request) bool {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// serveUpgrade hijacks the connection and has the gateway serve the
// request on it, replayed in HTTP/1.1 form, so that it can answer 101 and
// splice the session.
func (a *httpAdapter) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 {
		http.Error(w, "WebSocket upgrades need HTTP/1.1", http.StatusHTTPVersionNotSupported)
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "this server cannot hand the connection over for a WebSocket", http.StatusNotImplemented)
		return
	}
	var head bytes.Buffer
	head.WriteString(r.Method + " " + r.URL.RequestURI() + " HTTP/1.1\r\nHost: " + r.Host + "\r\n")
	for k, vs := range r.Header {
		for _, v := range vs {
			head.WriteString(k + ": " + v + "\r\n")
		}
	}
	head.WriteString("\r\n")
	// What the client sent after the request, already buffered, follows it.
	buffered, _ := rw.Reader.Peek(rw.Reader.Buffered())
	in := io.MultiReader(&head, bytes.NewReader(bytes.Clone(buffered)), conn)
	conn.SetDeadline(time.Time{}) // the host's deadlines were for its own exchange
	a.upgrades.ServeConn(&replayConn{Conn: conn, r: in})
}

// replayConn reads the replayed request, then the connection.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// addrConn is the connection a converted request reports: its addresses
// only (the gateway reads the client's address from it).
type addrConn struct {
	remote, local net.Addr
}

var errNoConn = errors.New("not a connection: a request converted from net/http")

func (c *addrConn) Read([]byte) (int, error)         { return 0, errNoConn }
func (c *addrConn) Write([]byte) (int, error)        { return 0, errNoConn }
func (c *addrConn) Close() error                     { return nil }
func (c *addrConn) LocalAddr() net.Addr              { return c.local }
func (c *addrConn) RemoteAddr() net.Addr             { return c.remote }
func (c *addrConn) SetDeadline(time.Time) error      { return nil }
func (c *addrConn) SetReadDeadline(time.Time) error  { return nil }
func (c *addrConn) SetWriteDeadline(time.Time) error { return nil }

var zeroAddr = &net.TCPAddr{IP: net.IPv4zero}

func remoteAddr(s string) net.Addr {
	if a, err := net.ResolveTCPAddr("tcp", s); err == nil && a != nil {
		return a
	}
	return zeroAddr
}

func localAddr(r *http.Request) net.Addr {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a
	}
	return zeroAddr
}
