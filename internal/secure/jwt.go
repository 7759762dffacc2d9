package secure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/cristalhq/jwt/v5"
	"github.com/rs/zerolog"
)

// Defaults for VerifierOptions.
const (
	DefaultJWKSRefresh    = 10 * time.Minute
	DefaultJWKSMinRefresh = 30 * time.Second
	DefaultJWKSTimeout    = 10 * time.Second
	DefaultCacheSize      = 4096
)

// MaxTokenLength bounds the tokens Verify looks at, in bytes. Supabase
// tokens are well under 2 KiB; anything longer is ErrMalformed.
const MaxTokenLength = 8 << 10

// VerifierOptions configures a Verifier. At least one of Secret,
// PublicKeyFile and JWKSURL must be set; all configured keys are used.
type VerifierOptions struct {
	// Secret is the HS256/384/512 shared secret (Supabase's JWT secret).
	// Empty means HS tokens are rejected with ErrAlgorithm.
	Secret []byte

	// PublicKeyFile is a PEM file of public keys ("PUBLIC KEY", "RSA PUBLIC
	// KEY" or "CERTIFICATE" blocks). RSA keys verify RS256/384/512 and
	// PS256/384/512, EC keys the ES algorithm of their curve (P-256 ES256,
	// P-384 ES384, P-521 ES512), Ed25519 keys EdDSA. These keys have no kid
	// and are tried for any token of a matching algorithm.
	PublicKeyFile string

	// JWKSURL is fetched once by NewVerifier and then refreshed. Its keys
	// are chosen by the token's kid (all of them when the token has none).
	JWKSURL string

	// JWKSRefresh is the background refresh period. Zero means
	// DefaultJWKSRefresh.
	JWKSRefresh time.Duration

	// JWKSMinRefresh is the least time between two JWKS fetches, so tokens
	// with unknown kids cannot hammer the JWKS host. A token with an unknown
	// kid triggers an immediate fetch only when the last one is older. Zero
	// means DefaultJWKSMinRefresh.
	JWKSMinRefresh time.Duration

	// Issuer and Audience, when non-empty, must match the iss claim and
	// one of the aud claim's values.
	Issuer, Audience string

	// ClockSkew is the leeway applied to exp and nbf. Zero means none.
	ClockSkew time.Duration

	// CacheSize bounds the verified-token cache, in entries. Zero means
	// DefaultCacheSize; negative disables the cache.
	CacheSize int

	// HTTPClient fetches the JWKS. Nil means a client with a
	// DefaultJWKSTimeout timeout.
	HTTPClient *http.Client

	// Log receives JWKS refresh failures and key changes.
	Log zerolog.Logger

	// now is the clock of the JWKS refresh floor; nil means time.Now.
	// Tests set it.
	now func() time.Time
}

// Verifier verifies JWTs against a fixed set of keys plus an optional JWKS.
// It is safe for concurrent use. Close stops its background JWKS refresh.
type Verifier struct {
	keys     atomic.Pointer[keySet]
	cache    *tokenCache
	jwks     *jwksSource
	issuer   string
	audience string
	skew     time.Duration
	log      zerolog.Logger

	ctx    context.Context // ends on Close; bounds JWKS fetches
	cancel context.CancelFunc
	done   chan struct{} // closed when the refresh loop returns
}

// Result describes a verified token. The Verifier shares it between callers
// presenting the same token: treat it as read-only.
type Result struct {
	ClaimsB64 []byte    // base64url (no padding) of the claims JSON, for x-auth-claims
	Sub       []byte    // the sub claim, or nil
	Expires   time.Time // the exp claim; zero when the token has none
}

// NewVerifier loads the configured keys. With a JWKSURL it fetches the JWKS
// once (an unreachable or unusable JWKS is an error naming the URL) and
// starts a background refresh that Close stops.
func NewVerifier(o VerifierOptions) (*Verifier, error) {
	static, err := staticKeys(o)
	if err != nil {
		return nil, err
	}
	if len(static) == 0 && o.JWKSURL == "" {
		return nil, errors.New("JWT verification needs a secret, a public key file or a JWKS URL")
	}
	v := &Verifier{
		cache:    newTokenCache(o.CacheSize),
		issuer:   o.Issuer,
		audience: o.Audience,
		skew:     max(o.ClockSkew, 0),
		log:      o.Log,
	}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	v.keys.Store(newKeySet(static, nil, o.JWKSURL != ""))
	if o.JWKSURL == "" {
		return v, nil
	}
	if err := v.startJWKS(o); err != nil {
		v.cancel()
		return nil, err
	}
	return v, nil
}

func staticKeys(o VerifierOptions) ([]*key, error) {
	var keys []*key
	if len(o.Secret) > 0 {
		k, err := newSecretKey(o.Secret)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if o.PublicKeyFile != "" {
		pem, err := loadPublicKeyFile(o.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		keys = append(keys, pem...)
	}
	return keys, nil
}

// startJWKS does the first fetch and starts the refresh loop.
func (v *Verifier) startJWKS(o VerifierOptions) error {
	u, err := url.Parse(o.JWKSURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("JWKS URL %q: want an http or https URL", o.JWKSURL)
	}
	src := &jwksSource{
		url:    o.JWKSURL,
		client: o.HTTPClient,
		minGap: durationOr(o.JWKSMinRefresh, DefaultJWKSMinRefresh),
		now:    o.now,
	}
	if src.client == nil {
		src.client = &http.Client{Timeout: DefaultJWKSTimeout}
	}
	if src.now == nil {
		src.now = time.Now
	}
	keys, _, skipped, err := src.fetchKeys(v.ctx)
	if err != nil {
		return err
	}
	v.logSkipped(src.url, skipped)
	v.jwks = src
	v.keys.Store(v.keys.Load().withJWKS(keys))
	v.done = make(chan struct{})
	go v.refreshLoop(durationOr(o.JWKSRefresh, DefaultJWKSRefresh))
	return nil
}

func durationOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close stops the background JWKS refresh and waits for it to return. It
// may be called more than once. Verify keeps working with the last keys.
func (v *Verifier) Close() {
	v.cancel()
	if v.done != nil {
		<-v.done
	}
}

// Verify checks token's signature and claims at time now. The returned
// error is one of the Err* values of this package. A token seen before is
// answered from the cache without allocating; its exp and nbf are still
// checked against now.
//
// Tokens without exp are accepted (RFC 7519 makes exp optional; Supabase
// always sets it), and Result.Expires is then zero. iat is not checked.
func (v *Verifier) Verify(token []byte, now time.Time) (*Result, error) {
	if len(token) == 0 {
		return nil, ErrMissing
	}
	// An entry verified with an older key set (a JWKS change raced with its
	// insert) is not trusted: it is verified again and replaced.
	if e := v.cache.get(token); e != nil && e.set == v.keys.Load() {
		if err := checkTimes(&e.times, now, v.skew); err != nil {
			return nil, err
		}
		return &e.res, nil
	}
	return v.verifyUncached(token, now)
}

func (v *Verifier) verifyUncached(token []byte, now time.Time) (*Result, error) {
	if !wellFormed(token) {
		return nil, ErrMalformed
	}
	set := v.keys.Load()
	tok, err := jwt.Parse(token, set)
	if errors.Is(err, ErrUnknownKey) && v.refreshJWKS(set) {
		set = v.keys.Load()
		tok, err = jwt.Parse(token, set)
	}
	if err != nil {
		return nil, publicError(err)
	}
	e, err := v.checkClaims(tok, now)
	if err != nil {
		return nil, err
	}
	e.set = set
	v.cache.put(string(token), e, now, v.skew)
	return &e.res, nil
}

// publicError maps what jwt.Parse returns to this package's errors.
func publicError(err error) error {
	for _, e := range []error{ErrAlgorithm, ErrUnknownKey, ErrBadSignature} {
		if errors.Is(err, e) {
			return e
		}
	}
	return ErrMalformed
}

// wellFormed reports whether token is three base64url segments (the
// signature may be empty, so that "alg":"none" is reported as such). The
// decoder behind jwt.Parse skips CR and LF; this check keeps them, and
// anything else that must not reach the x-auth-claims header, out.
func wellFormed(token []byte) bool {
	if len(token) > MaxTokenLength {
		return false
	}
	dots, seg := 0, 0
	for _, c := range token {
		switch {
		case c == '.':
			if seg == 0 {
				return false
			}
			dots++
			seg = 0
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			seg++
		default:
			return false
		}
	}
	return dots == 2
}
