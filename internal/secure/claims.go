package secure

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/cristalhq/jwt/v5"
)

// checkClaims decodes the registered claims of a signature-checked token
// and enforces exp, nbf, iss and aud. It returns the cache entry to keep.
//
// The claims are first read into a map so that member names match exactly:
// encoding/json would otherwise let "AUD" stand in for "aud", and the
// function behind the gateway (which reads the claims with JSON.parse) would
// then see an audience edgeway never checked. Duplicate members resolve as
// in JSON.parse: the last one wins.
func (v *Verifier) checkClaims(tok *jwt.Token, now time.Time) (*cacheEntry, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(tok.Claims(), &members); err != nil || members == nil {
		return nil, ErrMalformed
	}
	var rc jwt.RegisteredClaims
	if !decodeRegistered(members, &rc) {
		return nil, ErrMalformed
	}
	if err := checkTimes(&rc, now, v.skew); err != nil {
		return nil, err
	}
	if v.issuer != "" && !rc.IsIssuer(v.issuer) {
		return nil, ErrWrongIssuer
	}
	if v.audience != "" && !rc.IsForAudience(v.audience) {
		return nil, ErrWrongAudience
	}
	e := &cacheEntry{
		times: jwt.RegisteredClaims{ExpiresAt: rc.ExpiresAt, NotBefore: rc.NotBefore},
		res:   Result{ClaimsB64: bytes.Clone(tok.ClaimsPart())},
	}
	if rc.Subject != "" {
		e.res.Sub = []byte(rc.Subject)
	}
	if rc.ExpiresAt != nil {
		e.res.Expires = rc.ExpiresAt.Time
	}
	return e, nil
}

// decodeRegistered fills rc from the exact-named members exp, nbf, iss, sub
// and aud. A member of the wrong type makes the token malformed.
func decodeRegistered(members map[string]json.RawMessage, rc *jwt.RegisteredClaims) bool {
	var ok bool
	if rc.ExpiresAt, ok = decodeDate(members, "exp"); !ok {
		return false
	}
	if rc.NotBefore, ok = decodeDate(members, "nbf"); !ok {
		return false
	}
	if raw, ok := members["aud"]; ok && rc.Audience.UnmarshalJSON(raw) != nil {
		return false
	}
	return decodeString(members, "iss", &rc.Issuer) && decodeString(members, "sub", &rc.Subject)
}

// maxNumericDate is 9999-12-31T23:59:59Z. Dates outside [0, maxNumericDate]
// are refused: converting a huge float to seconds is not portable, and a
// wrapped nbf would look long past.
const maxNumericDate = 253402300799

func decodeDate(members map[string]json.RawMessage, name string) (*jwt.NumericDate, bool) {
	raw, ok := members[name]
	if !ok {
		return nil, true
	}
	d := new(jwt.NumericDate)
	if d.UnmarshalJSON(raw) != nil {
		return nil, false
	}
	sec := d.Unix()
	return d, sec >= 0 && sec <= maxNumericDate
}

func decodeString(members map[string]json.RawMessage, name string, dst *string) bool {
	raw, ok := members[name]
	if !ok {
		return true
	}
	return len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, dst) == nil
}

// checkTimes enforces exp and nbf with skew of leeway. It does not allocate:
// it runs on every cache hit.
func checkTimes(rc *jwt.RegisteredClaims, now time.Time, skew time.Duration) error {
	if !rc.IsValidExpiresAt(now.Add(-skew)) {
		return ErrExpired
	}
	if !rc.IsValidNotBefore(now.Add(skew)) {
		return ErrNotYetValid
	}
	return nil
}
