package secure

import (
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// TokenSource says where a request carries its token.
type TokenSource uint8

// Token sources. The zero value is TokenFromHeader.
const (
	TokenFromHeader TokenSource = iota // a header, by default Authorization: Bearer
	TokenFromCookie                    // a named cookie
	TokenFromQuery                     // a named query argument
)

var tokenSourceNames = [...]string{
	TokenFromHeader: "header",
	TokenFromCookie: "cookie",
	TokenFromQuery:  "query",
}

func (s TokenSource) String() string {
	if int(s) < len(tokenSourceNames) {
		return tokenSourceNames[s]
	}
	return fmt.Sprintf("TokenSource(%d)", s)
}

// ParseTokenSource parses "header", "cookie" or "query" (any case). The
// empty string means "header".
func ParseTokenSource(s string) (TokenSource, error) {
	if s == "" {
		return TokenFromHeader, nil
	}
	for i, name := range tokenSourceNames {
		if strings.EqualFold(s, name) {
			return TokenSource(i), nil
		}
	}
	return 0, fmt.Errorf("token source %q: want header, cookie or query", s)
}

// TokenFrom returns the request's token, or nil when there is none. From a
// header: with name "" or "Authorization" the token of an
// "Authorization: Bearer <token>" header (the scheme in any case), otherwise
// the whole value of header name. From a cookie or the query: the value of
// the cookie or argument name. It does not allocate; the result is valid
// until the request is released.
func TokenFrom(ctx *fasthttp.RequestCtx, from TokenSource, name string) []byte {
	var v []byte
	switch from {
	case TokenFromHeader:
		if name == "" || strings.EqualFold(name, fasthttp.HeaderAuthorization) {
			return bearerToken(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))
		}
		v = ctx.Request.Header.Peek(name)
	case TokenFromCookie:
		v = ctx.Request.Header.Cookie(name)
	case TokenFromQuery:
		v = ctx.QueryArgs().Peek(name)
	}
	if len(v) == 0 {
		return nil
	}
	return v
}

// bearerToken returns the token of an Authorization value "Bearer <token>",
// or nil for another scheme or an empty token.
func bearerToken(v []byte) []byte {
	const scheme = "bearer"
	if len(v) <= len(scheme) || v[len(scheme)] != ' ' || !asciiEqualFold(v[:len(scheme)], scheme) {
		return nil
	}
	v = v[len(scheme):]
	for len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	if len(v) == 0 {
		return nil
	}
	return v
}

// asciiEqualFold is strings.EqualFold for a lower-case ASCII b, without
// converting a to a string.
func asciiEqualFold(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i]|0x20 != b[i] {
			return false
		}
	}
	return true
}
