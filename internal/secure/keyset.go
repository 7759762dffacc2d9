package secure

import "github.com/cristalhq/jwt/v5"

// keySet is an immutable snapshot of every configured key. The Verifier
// publishes it through an atomic pointer and replaces it on a JWKS change.
//
// keySet is the jwt.Verifier handed to jwt.Parse: it picks the candidate
// keys from its own table by the header's alg and kid, and each candidate's
// verifier then compares the header alg with its own in constant time. A key
// is a candidate only if it was configured for that alg, so the header can
// choose among keys but never widen what a key may verify.
type keySet struct {
	static  []*key            // shared secret and PEM keys: any kid
	jwks    []*key            // every JWKS key, for tokens without a kid
	byKID   map[string][]*key // JWKS keys by kid
	hasJWKS bool              // a JWKS URL is configured
}

func newKeySet(static, jwks []*key, hasJWKS bool) *keySet {
	s := &keySet{static: static, jwks: jwks, hasJWKS: hasJWKS, byKID: make(map[string][]*key, len(jwks))}
	for _, k := range jwks {
		if k.kid != "" {
			s.byKID[k.kid] = append(s.byKID[k.kid], k)
		}
	}
	return s
}

// withJWKS returns a copy of s with the JWKS keys replaced.
func (s *keySet) withJWKS(jwks []*key) *keySet {
	return newKeySet(s.static, jwks, s.hasJWKS)
}

// Algorithm implements jwt.Verifier. A keySet has no single algorithm.
func (s *keySet) Algorithm() jwt.Algorithm { return "" }

// Verify implements jwt.Verifier. It returns nil, ErrAlgorithm (no
// configured key may verify the header's alg, including "none"),
// ErrUnknownKey (an asymmetric token whose kid the JWKS does not hold) or
// ErrBadSignature.
func (s *keySet) Verify(t *jwt.Token) error {
	h := t.Header()
	if !supportedAlg(h.Algorithm) {
		return ErrAlgorithm
	}
	tried := false
	// JWKS never publishes symmetric keys, so an HS token's kid is ignored.
	asymmetric := h.Algorithm[0] != 'H'
	if asymmetric && s.hasJWKS {
		cands := s.jwks
		if h.KeyID != "" {
			cands = s.byKID[h.KeyID]
		}
		ok, some := verifyWith(cands, h.Algorithm, t)
		if ok {
			return nil
		}
		tried = some
	}
	ok, some := verifyWith(s.static, h.Algorithm, t)
	if ok {
		return nil
	}
	tried = tried || some
	switch {
	case asymmetric && s.hasJWKS && h.KeyID != "" && len(s.byKID[h.KeyID]) == 0:
		return ErrUnknownKey
	case tried:
		return ErrBadSignature
	}
	return ErrAlgorithm
}

// verifyWith tries the keys allowed to verify alg. tried reports whether
// there was one.
func verifyWith(keys []*key, alg jwt.Algorithm, t *jwt.Token) (ok, tried bool) {
	for _, k := range keys {
		v := k.verifier(alg)
		if v == nil {
			continue
		}
		tried = true
		if v.Verify(t) == nil {
			return true, true
		}
	}
	return false, tried
}

func supportedAlg(alg jwt.Algorithm) bool {
	switch alg {
	case jwt.HS256, jwt.HS384, jwt.HS512,
		jwt.RS256, jwt.RS384, jwt.RS512,
		jwt.PS256, jwt.PS384, jwt.PS512,
		jwt.ES256, jwt.ES384, jwt.ES512,
		jwt.EdDSA:
		return true
	}
	return false
}
