package server

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"edgeway.dev/edgeway/internal/observe"
	"edgeway.dev/edgeway/internal/secure"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// Authenticator decides whether a request may call a function that is
// not public (function.json "auth": false, or a public route), in place
// of --auth. For every such request the gateway calls Credentials; empty
// credentials are refused 401 UNAUTHORIZED ("missing credentials")
// without calling Verify. Verify's error refuses the request 401 too (its
// body is the generic "malformed token" unless the error wraps one of the
// built-in reasons; Hooks.OnAuthFailure sees the error and may write a
// refusal of its own). Verify's Claims reach the function exactly as a
// verified JWT's do: base64url JSON in the X-Auth-Claims header (any
// X-Auth-Claims a client sends is removed first); their "sub" keys the
// rate limit instead of the client address.
//
// Both methods run on the request's goroutine for every request: they
// must be safe for concurrent use and must not block without a deadline.
// Credentials' result is only read until Verify returns; the Claims only
// until the request is answered, so a fixed set of principals can return
// the same *Claims every time (built once with NewClaims: then nothing is
// allocated per request). A panic in either is recovered and counted in
// edgeway_panics_total{where="hook"}, and the request refused 401.
type Authenticator interface {
	Credentials(ctx *fasthttp.RequestCtx) []byte
	Verify(credentials []byte, now time.Time) (*Claims, error)
}

// MaxClaimsBytes bounds the JSON of a Claims, so X-Auth-Claims stays
// within what the gateway forwards for a JWT.
const MaxClaimsBytes = secure.MaxAPIKeyClaims

// Claims are what a request's credentials stand for, as forwarded to the
// function. Build them with NewClaims; a nil *Claims forwards none.
type Claims struct {
	res  secure.Result
	json []byte
}

// NewClaims encodes v, anything encoding/json turns into a JSON object
// (a map[string]any, a struct), as the claims a function receives in
// X-Auth-Claims. A string "sub" member keys the per-client rate limit.
// It fails when v is not an object or its JSON is over MaxClaimsBytes.
func NewClaims(v any) (*Claims, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(js, &members); err != nil || members == nil {
		return nil, errors.New("claims: want a JSON object")
	}
	if len(js) > MaxClaimsBytes {
		return nil, fmt.Errorf("claims: %d bytes of JSON, at most %d", len(js), MaxClaimsBytes)
	}
	c := &Claims{json: js}
	c.res.ClaimsB64 = []byte(base64.RawURLEncoding.EncodeToString(js))
	var sub string
	if raw, ok := members["sub"]; ok && json.Unmarshal(raw, &sub) == nil && sub != "" {
		c.res.Sub = []byte(sub)
	}
	return c, nil
}

// JSON returns the claims' JSON object; do not modify it.
func (c *Claims) JSON() []byte { return c.json }

// Subject returns the "sub" claim, or "".
func (c *Claims) Subject() string { return string(c.res.Sub) }

// ErrAuthenticatorPanicked is the error a request is refused with when
// the Authenticator panicked.
var ErrAuthenticatorPanicked = errors.New("the authenticator panicked")

var noClaims secure.Result

// authAdapter makes an Authenticator the gateway's: it turns Claims into
// the gateway's result and contains panics.
type authAdapter struct {
	a   Authenticator
	log zerolog.Logger
}

func (x authAdapter) Credentials(ctx *fasthttp.RequestCtx) (cred []byte) {
	defer func() {
		if v := recover(); v != nil {
			observe.Recovered(x.log, observe.PanicHook, v)
			cred = nil // refused as missing
		}
	}()
	return x.a.Credentials(ctx)
}

func (x authAdapter) Verify(cred []byte, now time.Time) (res *secure.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			observe.Recovered(x.log, observe.PanicHook, v)
			res, err = nil, ErrAuthenticatorPanicked
		}
	}()
	c, err := x.a.Verify(cred, now)
	switch {
	case err != nil:
		return nil, err
	case c == nil:
		return &noClaims, nil
	}
	return &c.res, nil
}
