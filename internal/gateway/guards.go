package gateway

import (
	"bytes"
	"errors"
	"net/netip"
	"time"

	"edgeway.dev/edgeway/internal/guard"
	"edgeway.dev/edgeway/internal/routable"
	"edgeway.dev/edgeway/internal/secure"

	"github.com/valyala/fasthttp"
)

// Guards, in the order they run for a function route (cheap refusals
// first, before any worker is touched):
//
//	framing → admin paths → internal-header strip → CORS preflight →
//	unknown name 404 → body size → auth → rate limit → circuit breaker →
//	dispatch
//
// The first five run in Handle; admit runs the rest. With Expect:
// 100-continue, expect runs the header-only ones before 100 is sent.

var (
	hdrAuthClaims  = []byte("X-Auth-Claims")
	errRateLimited = newError(fasthttp.StatusTooManyRequests, "RATE_LIMITED", "too many requests; retry later")
	errCircuitOpen = newError(fasthttp.StatusServiceUnavailable, "CIRCUIT_OPEN", "function is failing; retry later")
)

// unauthorized holds a prebuilt 401 per verification failure: the body says
// why in a few words, the log says more.
var unauthorized = map[error]gatewayError{}

func init() {
	for _, err := range []error{secure.ErrMissing, secure.ErrMalformed, secure.ErrExpired, secure.ErrNotYetValid, secure.ErrBadSignature, secure.ErrWrongIssuer, secure.ErrWrongAudience, secure.ErrUnknownKey, secure.ErrAlgorithm, secure.ErrUnknownAPIKey} {
		unauthorized[err] = newError(fasthttp.StatusUnauthorized, "UNAUTHORIZED", err.Error())
	}
}

func unauthorizedError(err error) gatewayError {
	if e, ok := unauthorized[err]; ok {
		return e
	}
	for known, e := range unauthorized {
		if errors.Is(err, known) {
			return e
		}
	}
	return unauthorized[secure.ErrMalformed]
}

// clientIP is the socket peer, or, when the peer is a trusted proxy, the
// right-most untrusted X-Forwarded-For entry. Every X-Forwarded-For line
// counts, in the order received (a proxy may append its own line rather
// than extend the first); see xffLines.
func (g *Gateway) clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	remote := guard.RemoteAddr(ctx)
	g.warnUntrustedForwarder(ctx, remote)
	if len(g.trusted) == 0 {
		return remote
	}
	var lines [maxXFFLines][]byte
	n := xffLines(ctx.Request.Header.RawHeaders(), &lines)
	return guard.ClientIPHeaders(remote, lines[:n], g.trusted)
}

// maxXFFLines bounds the X-Forwarded-For lines clientIP reads: the last
// ones count, as the walk goes right to left and stops at the first
// untrusted entry.
const maxXFFLines = 16

// xffLines collects the values of the X-Forwarded-For lines of a raw header
// block, in order, keeping the last len(lines) of them. It allocates
// nothing.
func xffLines(raw []byte, lines *[maxXFFLines][]byte) int {
	n := 0
	for start := 0; start < len(raw); {
		end := bytes.IndexByte(raw[start:], '\n')
		if end < 0 {
			end = len(raw)
		} else {
			end += start
		}
		line := raw[start:end]
		start = end + 1
		if !hasPrefixFold(line, "x-forwarded-for:") {
			continue
		}
		v := line[len("x-forwarded-for:"):]
		if len(v) > 0 && v[len(v)-1] == '\r' {
			v = v[:len(v)-1]
		}
		if n == len(lines) {
			copy(lines[:], lines[1:])
			n--
		}
		lines[n] = v
		n++
	}
	return n
}

// admit runs body size, auth, rate limit and circuit breaker (the framing
// check runs first of all, in Handle). It answers and returns false when the request is refused.
func (g *Gateway) admit(ctx *fasthttp.RequestCtx, fn *routable.Function, client netip.Addr, now time.Time) bool {
	if cl := ctx.Request.Header.ContentLength(); cl > 0 && int64(cl) > fn.Config.MaxBodyBytes {
		// Straight to close and linger: the declared body is not read.
		refuseAndClose(ctx, errTooLarge)
		fn.Metrics.Refuse(CodeTooLarge)
		return false
	}
	var keyBuf [80]byte
	key := append(keyBuf[:0], 'i', ':')
	key = client.AppendTo(key)
	if g.auth != nil && !fn.Config.Public && !ctx.IsOptions() {
		res, err := g.authenticate(ctx, now)
		if err != nil {
			g.refuseAuth(ctx, fn, err)
			return false
		}
		if len(res.ClaimsB64) > 0 {
			ctx.Request.Header.SetBytesKV(hdrAuthClaims, res.ClaimsB64)
		}
		if len(res.Sub) > 0 {
			key = append(append(keyBuf[:0], 's', ':'), res.Sub...)
		}
	}
	// RateLimiter is nil when the function's limit is off, with or
	// without a shared store.
	if fn.RateLimiter != nil && !g.rateLimit(ctx, fn, client, key, now) {
		return false
	}
	if ok, retry := fn.Breaker.Allow(now); !ok {
		errCircuitOpen.writeRetryAfter(ctx, retry)
		fn.Metrics.Refuse("CIRCUIT_OPEN")
		return false
	}
	return true
}

// refuseMalformed runs before any routing, admin paths included: a request
// whose framing another parser could read differently is answered 400 and
// its connection closed (lingering). It reports whether it answered.
func (g *Gateway) refuseMalformed(ctx *fasthttp.RequestCtx) bool {
	if ambiguousFraming(ctx.Request.Header.RawHeaders()) {
		refuseAndClose(ctx, errBadRequest)
		return true
	}
	if !g.validRequest(ctx) { // what the worker's parser would refuse (requestcheck.go)
		if c := connOf(ctx); c != nil {
			c.lingerOnClose()
		}
		return true
	}
	return false
}

// refuseAndClose answers e and closes the connection, lingering: the
// request's body, if any, is not read.
func refuseAndClose(ctx *fasthttp.RequestCtx, e gatewayError) {
	e.write(ctx)
	ctx.SetConnectionClose()
	if c := connOf(ctx); c != nil {
		c.lingerOnClose()
	}
}

// ambiguousFraming reports a header block (as received: fasthttp's
// RawHeaders) that a proxy in front of the gateway could frame differently
// than fasthttp v1.74.0 does, which serves all of these:
//
//   - Content-Length together with Transfer-Encoding: fasthttp lets
//     Transfer-Encoding win but keeps the connection open, so bytes after the
//     chunked body are served as the next request (RFC 9112 §6.1 says the
//     server MUST close the connection);
//   - an obs-fold continuation line, which fasthttp unfolds (a folded
//     "Transfer-Encoding:\r\n chunked" takes effect where a proxy may
//     ignore it);
//   - a bare LF line ending;
//   - a Connection header naming Content-Length, Transfer-Encoding or Host:
//     a hop-by-hop strip would delete the request's own framing or routing,
//     so the function would see an empty body whose bytes are then parsed
//     as the next request.
//
// A bare LF ending the request line is accepted, as nginx and Deno accept
// it (RFC 9112 §2.2 allows it; fasthttp does not keep the request line):
// no parser on either side frames it differently, and the gateway
// re-serialises every request (e2e TestRequestCheckDifferential).
// It must run before sanitizeRequest, whose header scanner unfolds
// continuation lines in place. It does not allocate.
func ambiguousFraming(raw []byte) bool {
	var contentLength, transferEncoding bool
	for start := 0; start < len(raw); {
		i := bytes.IndexByte(raw[start:], '\n')
		if i < 0 {
			break
		}
		end := start + i
		if end == 0 || raw[end-1] != '\r' {
			return true // bare LF
		}
		line := raw[start : end-1]
		start = end + 1
		switch {
		case len(line) == 0:
		case line[0] == ' ' || line[0] == '\t':
			return true // obs-fold
		case hasPrefixFold(line, "content-length:"):
			contentLength = true
		case hasPrefixFold(line, "transfer-encoding:"):
			transferEncoding = true
		case hasPrefixFold(line, "connection:"):
			if namesFraming(line[len("connection:"):]) {
				return true
			}
		}
	}
	return contentLength && transferEncoding
}

// namesFraming reports a Connection value with a token naming a framing or
// routing header.
func namesFraming(v []byte) bool {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		tok := v
		if i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		tok = bytes.Trim(tok, " \t")
		if equalFold(tok, "content-length") || equalFold(tok, "transfer-encoding") || equalFold(tok, "host") {
			return true
		}
	}
	return false
}

// checkToken is the auth check of admit without its side effects (for
// expect): the error when the request would be refused 401.
func (g *Gateway) checkToken(ctx *fasthttp.RequestCtx, fn *routable.Function) (error, bool) {
	if g.auth == nil || fn.Config.Public || ctx.IsOptions() {
		return nil, false
	}
	_, err := g.authenticate(ctx, time.Now())
	return err, err != nil
}

func (g *Gateway) refuse(ctx *fasthttp.RequestCtx, fn *routable.Function, e gatewayError) {
	e.write(ctx)
	fn.Metrics.Refuse(string(e.code))
}

func (g *Gateway) refuseAuth(ctx *fasthttp.RequestCtx, fn *routable.Function, err error) {
	g.refuse(ctx, fn, unauthorizedError(err))
	g.log.Info().Bytes("request_id", ctx.Request.Header.PeekBytes(hdrRequestID)).Str("function", fn.Name).Str("reason", err.Error()).Msg("request refused: unauthorized")
	if g.hooks.AuthFailure != nil {
		g.authFailure(ctx, fn.Name, err)
	}
}

// breakerFailure reports whether a finished request counts against the
// circuit breaker: a worker failure or timeout made by the gateway, not the
// function's own status and not load shedding.
func breakerFailure(ctx *fasthttp.RequestCtx) bool {
	code := ctx.Response.Header.PeekBytes(errorHeaderKey)
	switch string(code) {
	case CodeWorkerError, CodeTimeout, CodeBootError, CodeWorkerLimit:
		return true
	}
	return false
}
