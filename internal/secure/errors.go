package secure

import "errors"

// Verification errors. Verify returns them unwrapped; their text is short
// and safe to send to the client (it names no key, claim value or secret).
var (
	ErrMissing       = errors.New("missing authorization token")
	ErrMalformed     = errors.New("malformed token")
	ErrExpired       = errors.New("token expired")
	ErrNotYetValid   = errors.New("token not yet valid")
	ErrBadSignature  = errors.New("invalid token signature")
	ErrWrongIssuer   = errors.New("wrong token issuer")
	ErrWrongAudience = errors.New("wrong token audience")
	ErrUnknownKey    = errors.New("unknown signing key")
	ErrAlgorithm     = errors.New("unsupported token algorithm")
)
