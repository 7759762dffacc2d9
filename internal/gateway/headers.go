package gateway

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// InternalPrefix marks headers the gateway uses itself. Clients can never
// send them to a function, and functions can never send them to clients.
const InternalPrefix = "x-edgeway-"

// claimsHeader carries verified JWT claims to functions; a client-sent copy
// is always removed.
const claimsHeader = "x-auth-claims"

var (
	hdrXForwardedFor   = []byte("X-Forwarded-For")
	hdrXForwardedHost  = []byte("X-Forwarded-Host")
	hdrXForwardedProto = []byte("X-Forwarded-Proto")
	hdrRetryAfter      = []byte("Retry-After")
	valHTTP            = []byte("http")
	defaultHost        = []byte("localhost")
)

// hopByHop lists headers that describe one connection, not the message
// (RFC 9110 §7.6.1). Transfer-Encoding and Content-Length are re-framed by
// fasthttp itself; Connection: close is a flag handled in the proxy.
var hopByHop = []string{"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate"}

// expectHeader is answered by the gateway itself (100 Continue), so it is
// not forwarded.
const expectHeader = "expect"

// equalFold compares an ASCII header name with a lower-case constant.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, lower string) bool {
	return len(b) >= len(lower) && equalFold(b[:len(lower)], lower)
}

// mustDropRequestHeader reports headers a client may not pass to a function.
// A name with an underscore is dropped, as nginx does by default
// (underscores_in_headers off): X_Auth_Claims must not pass for
// X-Auth-Claims in code that maps one to the other (CGI-style).
func mustDropRequestHeader(key []byte) bool {
	if hasPrefixFold(key, InternalPrefix) || equalFold(key, claimsHeader) || equalFold(key, expectHeader) || bytes.IndexByte(key, '_') >= 0 {
		return true
	}
	for _, h := range hopByHop {
		if equalFold(key, h) {
			return true
		}
	}
	return false
}

// sanitizeRequest removes internal and hop-by-hop headers, and every header
// a Connection header names, without allocating. It walks the raw header
// block (AllInOrder) while deleting from the parsed headers, which that
// iterator does not read (fasthttp v1.74.0).
func sanitizeRequest(h *fasthttp.RequestHeader) {
	closeConn := h.ConnectionClose()
	touched := false
	for k, v := range h.AllInOrder() {
		if !mustDropRequestHeader(k) {
			continue
		}
		touched = true
		if equalFold(k, "connection") {
			forEachToken(v, func(tok []byte) {
				if !equalFold(tok, "close") && !equalFold(tok, "keep-alive") {
					h.DelBytes(tok)
				}
			})
		}
		h.DelBytes(k)
	}
	if touched && closeConn {
		h.SetConnectionClose()
	}
}

// sanitizeResponse removes internal and hop-by-hop headers a function set,
// the function's Connection header and every header it names (RFC 9110
// §7.6.1), except the framing the gateway owns (Content-Length,
// Transfer-Encoding). Whether the client connection stays open is the
// gateway's decision, not the function's (the proxy already reset the
// close flag). Such headers are rare, so it simply rescans after each
// deletion.
func sanitizeResponse(h *fasthttp.ResponseHeader) {
	if len(h.PeekBytes(hdrConnection)) > 0 {
		stripConnection(h)
	}
	for {
		var name [64]byte
		var key []byte
		for k := range h.All() {
			if mustDropResponseHeader(k) {
				key = append(name[:0], k...)
				break
			}
		}
		if key == nil {
			return
		}
		h.DelBytes(key)
	}
}

// stripConnection deletes a response's Connection headers and the headers
// they name. It is rare, and allocates its buffer (the iterator's closure
// captures it).
func stripConnection(h *fasthttp.ResponseHeader) {
	// The names the Connection headers list, joined with commas; a list
	// longer than the buffer loses its last, cut-off, token.
	var named [1024]byte
	list := named[:0]
	for k, v := range h.All() {
		if !equalFold(k, "connection") {
			continue
		}
		if len(list)+1+len(v) > cap(list) {
			room := v[:cap(list)-len(list)-1]
			if i := bytes.LastIndexByte(room, ','); i >= 0 {
				list = append(append(list, ','), room[:i]...)
			}
			break
		}
		list = append(append(list, ','), v...)
	}
	h.DelBytes(hdrConnection)
	forEachToken(list, func(tok []byte) {
		if !equalFold(tok, "content-length") && !equalFold(tok, "transfer-encoding") {
			h.DelBytes(tok)
		}
	})
}

func mustDropResponseHeader(key []byte) bool {
	if hasPrefixFold(key, InternalPrefix) {
		return true
	}
	for _, h := range hopByHop {
		if equalFold(key, h) {
			return true
		}
	}
	return false
}

// forEachToken calls f with each comma-separated, trimmed token of v.
func forEachToken(v []byte, f func([]byte)) {
	start := 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) && v[i] != ',' {
			continue
		}
		tok := v[start:i]
		for len(tok) > 0 && (tok[0] == ' ' || tok[0] == '\t') {
			tok = tok[1:]
		}
		for len(tok) > 0 && (tok[len(tok)-1] == ' ' || tok[len(tok)-1] == '\t') {
			tok = tok[:len(tok)-1]
		}
		if len(tok) > 0 {
			f(tok)
		}
		start = i + 1
	}
}

// setForwarded sets X-Forwarded-For to the client's address as the gateway
// resolved it (see clientIP), and X-Forwarded-Host/-Proto from what the
// gateway saw, or from a trusted proxy's headers. Client-sent values are
// replaced.
func setForwarded(ctx *fasthttp.RequestCtx, client netip.Addr, trustedPeer bool) {
	h := &ctx.Request.Header
	var buf [64]byte
	h.DelBytes(hdrXForwardedFor) // every line: SetBytesKV replaces only the first
	h.SetBytesKV(hdrXForwardedFor, client.AppendTo(buf[:0]))
	host := h.Host()
	if len(host) == 0 {
		h.SetHostBytes(defaultHost)
		host = defaultHost
	}
	if trustedPeer && len(h.PeekBytes(hdrXForwardedHost)) > 0 && len(h.PeekBytes(hdrXForwardedProto)) > 0 {
		return // the trusted proxy's host and scheme stand
	}
	h.SetBytesKV(hdrXForwardedHost, host)
	h.SetBytesKV(hdrXForwardedProto, valHTTP)
}

var (
	hdrUpgrade    = []byte("Upgrade")
	hdrConnection = []byte("Connection")
	valWebSocket  = []byte("websocket")
	valUpgrade    = []byte("Upgrade")
)

// isWebSocketUpgrade reports a WebSocket handshake (Connection: upgrade and
// Upgrade: websocket), checked before the hop-by-hop strip removes both.
func isWebSocketUpgrade(h *fasthttp.RequestHeader) bool {
	return h.ConnectionUpgrade() && equalFold(h.PeekBytes(hdrUpgrade), "websocket")
}

// restoreUpgrade puts back the two hop-by-hop headers a WebSocket
// handshake needs, after the strip removed whatever the client sent.
func restoreUpgrade(h *fasthttp.RequestHeader) {
	h.SetBytesKV(hdrConnection, valUpgrade)
	h.SetBytesKV(hdrUpgrade, valWebSocket)
}
