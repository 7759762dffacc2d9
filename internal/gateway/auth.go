package gateway

import (
	"time"

	"edgeway.dev/edgeway/internal/secure"

	"github.com/valyala/fasthttp"
)

// Authenticator decides whether a request may call a function that is not
// public (--auth). The gateway calls Credentials, refuses the request 401
// with secure.ErrMissing when they are empty, then calls Verify; a non-nil
// error is a 401 whose body is the error's text when it is one of secure's
// errors (a generic "malformed token" otherwise). The Result's ClaimsB64,
// when not empty, reaches the function as X-Auth-Claims; its Sub keys the
// rate limit instead of the client address.
//
// Both methods run on the request path for every request: they must not
// block without a deadline, should not allocate, and must be safe for
// concurrent use. Credentials' result and the Result are only read until
// the request is answered.
type Authenticator interface {
	Credentials(ctx *fasthttp.RequestCtx) []byte
	Verify(credentials []byte, now time.Time) (*secure.Result, error)
}

// JWTAuth is the Authenticator of --auth jwt: a token read from From/Name
// (secure.TokenFrom) and checked by Verifier.
type JWTAuth struct {
	Verifier *secure.Verifier
	From     secure.TokenSource
	Name     string // header, cookie or query name; "" is Authorization: Bearer
}

// Credentials returns the request's token.
func (a *JWTAuth) Credentials(ctx *fasthttp.RequestCtx) []byte {
	return secure.TokenFrom(ctx, a.From, a.Name)
}

// Verify checks the token.
func (a *JWTAuth) Verify(token []byte, now time.Time) (*secure.Result, error) {
	return a.Verifier.Verify(token, now)
}

// NoAuth is the Authenticator of --auth none: every request passes and
// no claims are forwarded. The gateway skips it without calling it.
type NoAuth struct{}

var (
	noClaims  secure.Result
	anonymous = []byte("anonymous")
)

// Credentials returns a placeholder: nothing is read.
func (NoAuth) Credentials(*fasthttp.RequestCtx) []byte { return anonymous }

// Verify accepts anything.
func (NoAuth) Verify([]byte, time.Time) (*secure.Result, error) { return &noClaims, nil }

// Compile-time checks that the built-in strategies are Authenticators.
var (
	_ Authenticator = (*JWTAuth)(nil)
	_ Authenticator = NoAuth{}
	_ Authenticator = (*secure.APIKeys)(nil)
)

// authenticator is a's effective form: nil when no check is needed.
func authenticator(a Authenticator) Authenticator {
	if _, none := a.(NoAuth); none {
		return nil
	}
	return a
}

// authenticate runs the configured Authenticator on a request.
func (g *Gateway) authenticate(ctx *fasthttp.RequestCtx, now time.Time) (*secure.Result, error) {
	cred := g.auth.Credentials(ctx)
	if len(cred) == 0 {
		return nil, secure.ErrMissing
	}
	return g.auth.Verify(cred, now)
}
