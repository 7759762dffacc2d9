package gateway

import (
	"bytes"
	"net/netip"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/idna"
)

// Requests fasthttp v1.74 accepts but a worker must never see. A worker's
// parser (Deno's hyper) answers 400 to some of them and closes the
// connection, which on a pipelined upstream connection fails the requests of
// other clients queued behind; others reach the function in a form it
// cannot use (a Host that makes `new URL(req.url)` throw). The front door
// refuses them all with 400 BAD_REQUEST and Connection: close, before
// routing. The set was decided by sending the same raw requests to Deno and
// through the gateway (e2e TestRequestCheckDifferential).

// maxWorkerURI is the longest request target the worker's parser takes
// (the http crate's limit, u16::MAX-1).
const maxWorkerURI = 65534

// Reasons a request is refused, for the debug log and tests.
const (
	badMethod   = "method CONNECT"
	badProtocol = "protocol is not HTTP/1.0 or HTTP/1.1"
	badURIByte  = "non-ASCII byte in request target"
	badURILen   = "request target longer than the worker accepts"
	badFields   = "too many header fields"
	badHost     = "invalid Host"
)

var (
	strConnect = []byte("CONNECT")
	strHTTP10  = []byte("HTTP/1.0")
	strHTTP11  = []byte("HTTP/1.1")
)

// validRequest reports whether the request may go on. When it may not, it
// has answered 400 BAD_REQUEST and marked the connection to close. It
// allocates nothing for ordinary requests.
func (g *Gateway) validRequest(ctx *fasthttp.RequestCtx) bool {
	h := &ctx.Request.Header
	reason := requestProblem(h.Method(), h.RequestURI(), h.Protocol(), h.RawHeaders(), h.Host(), g.opts.MaxHeaderFields)
	if reason == "" {
		return true
	}
	errBadRequest.write(ctx)
	ctx.SetConnectionClose()
	g.log.Debug().Str("reason", reason).Msg("request refused at the front door")
	return false
}

// requestProblem returns why a parsed request (as fasthttp saw it; raw is
// its header block as received) must be refused, or "" when it may go on.
func requestProblem(method, uri, proto, raw, host []byte, maxFields int) string {
	// hyper treats CONNECT as a tunnel request and refuses an origin-form
	// target; a function behind a gateway has no use for tunnels.
	if bytes.Equal(method, strConnect) {
		return badMethod
	}
	if !bytes.Equal(proto, strHTTP11) && !bytes.Equal(proto, strHTTP10) {
		return badProtocol
	}
	if len(uri) > maxWorkerURI {
		return badURILen
	}
	for _, c := range uri {
		if c >= 0x80 {
			return badURIByte
		}
	}
	if headerFields(raw) > maxFields {
		return badFields
	}
	if !validHost(host) {
		return badHost
	}
	return ""
}

// headerFields counts the non-empty lines of a raw header block.
func headerFields(raw []byte) int {
	n := 0
	for start := 0; start < len(raw); {
		i := bytes.IndexByte(raw[start:], '\n')
		if i < 0 {
			i = len(raw) - start
		}
		line := raw[start : start+i]
		if len(line) > 0 && !(len(line) == 1 && line[0] == '\r') {
			n++
		}
		start += i + 1
	}
	return n
}

// validHost reports whether a Host value is an RFC 3986 authority without
// userinfo (reg-name or IP literal, optional port) that the WHATWG URL
// parser (`new URL(req.url)` in a function) also accepts: a port of at most
// 65535, a name ending in a number only when it is a valid IPv4 address,
// and punycode labels ("xn--") that are valid IDNA. Non-ASCII bytes are
// refused (the worker ignores such a Host and reports its socket path). An
// empty Host is left to the gateway, which substitutes its default.
func validHost(host []byte) bool {
	if len(host) == 0 {
		return true
	}
	name := host
	if host[0] == '[' {
		end := bytes.IndexByte(host, ']')
		if end < 0 || !validIPv6(host[1:end]) {
			return false
		}
		rest := host[end+1:]
		if len(rest) == 0 {
			return true
		}
		return rest[0] == ':' && validPort(rest[1:])
	}
	if i := bytes.LastIndexByte(host, ':'); i >= 0 {
		if !validPort(host[i+1:]) {
			return false
		}
		name = host[:i]
	}
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if !regNameByte(c) {
			return false
		}
	}
	if endsInNumber(name) && !validIPv4(name) {
		return false
	}
	if hasPunycodeLabel(name) {
		return validIDNA(name)
	}
	return true
}

// regNameByte reports RFC 3986 unreserved and sub-delims characters (a
// pct-encoded Host is refused by fasthttp already).
func regNameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}

// validPort accepts an empty port or up to 65535 in decimal digits.
func validPort(p []byte) bool {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return false
		}
	}
	return true
}

func validIPv6(b []byte) bool {
	if len(b) == 0 || len(b) > 45 {
		return false
	}
	for _, c := range b {
		if !(c == ':' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	// The string does not outlive the call: no zone ('%') is kept.
	a, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	return err == nil && a.Is6()
}

// endsInNumber follows the WHATWG URL standard: the last label (a trailing
// dot ignored) is all digits, or 0x followed by hex digits.
func endsInNumber(name []byte) bool {
	if name[len(name)-1] == '.' {
		name = name[:len(name)-1]
	}
	last := name[bytes.LastIndexByte(name, '.')+1:]
	if len(last) == 0 {
		return false
	}
	if allDigits(last, 10) {
		return true
	}
	return len(last) >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') && allDigits(last[2:], 16)
}

// validIPv4 is the WHATWG IPv4 parser's verdict: at most four parts, each
// decimal, 0x-hex or 0-octal, all but the last at most 255 and the last
// filling the remaining bytes.
func validIPv4(name []byte) bool {
	if name[len(name)-1] == '.' {
		name = name[:len(name)-1]
	}
	parts := bytes.Count(name, []byte{'.'}) + 1
	if parts > 4 {
		return false
	}
	for i := 0; i < parts; i++ {
		part := name
		if j := bytes.IndexByte(name, '.'); j >= 0 {
			part, name = name[:j], name[j+1:]
		}
		v, ok := ipv4Number(part)
		if !ok {
			return false
		}
		if i < parts-1 && v > 255 {
			return false
		}
		if i == parts-1 && v >= uint64(1)<<(8*(5-parts)) {
			return false
		}
	}
	return true
}

func ipv4Number(p []byte) (uint64, bool) {
	if len(p) == 0 {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, p = 16, p[2:]
	case len(p) >= 2 && p[0] == '0':
		base, p = 8, p[1:]
	}
	var v uint64
	for _, c := range p {
		d, ok := digitValue(c)
		if !ok || d >= base {
			return 0, false
		}
		v = v*base + d
		if v > 1<<32 {
			return v, true // too large for any part; the caller refuses it
		}
	}
	return v, true
}

func digitValue(c byte) (uint64, bool) {
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0'), true
	case 'a' <= c && c <= 'f':
		return uint64(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

func allDigits(b []byte, base uint64) bool {
	for _, c := range b {
		if d, ok := digitValue(c); !ok || d >= base {
			return false
		}
	}
	return true
}

func hasPunycodeLabel(name []byte) bool {
	for start := 0; start < len(name); {
		if hasPrefixFold(name[start:], "xn--") {
			return true
		}
		i := bytes.IndexByte(name[start:], '.')
		if i < 0 {
			return false
		}
		start += i + 1
	}
	return false
}

// whatwgIDNA is domain-to-ASCII as the WHATWG URL standard runs it
// (UTS #46, non-transitional, no STD3 rules, no hyphen checks).
var whatwgIDNA = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false),
	idna.StrictDomainName(false), idna.CheckHyphens(false), idna.CheckJoiners(true))

// validIDNA checks a name with punycode labels; it allocates, but only for
// such names.
// Beyond x/net/idna it refuses what UTS #46 (Unicode 15.1, which V8
// follows) also refuses: a punycode label that is empty ("xn--") or decodes
// to ASCII only.
func validIDNA(name []byte) bool {
	s := string(name)
	if _, err := whatwgIDNA.ToASCII(s); err != nil {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) < 4 || !strings.EqualFold(label[:4], "xn--") {
			continue
		}
		u, err := whatwgIDNA.ToUnicode(label)
		if err != nil || len(label) == 4 || isASCII(u) {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
