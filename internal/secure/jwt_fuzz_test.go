package secure

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/cristalhq/jwt/v5"
)

// FuzzVerify feeds arbitrary bytes to Verify twice: as a raw token (the
// parser) and as the claims of a correctly signed HS256 token (the claims
// checks). Verify must never panic and must return either a result or one
// of the package's errors.
func FuzzVerify(f *testing.F) {
	k := keysOnce()
	v := allKeysVerifier(f, VerifierOptions{Issuer: "iss", Audience: "aud", CacheSize: 64})
	hs := signerHS(f, jwt.HS256, []byte(testSecret))
	f.Add([]byte(sign(f, hs, "", claims(map[string]any{"iss": "iss", "aud": "aud"}))))
	f.Add([]byte(sign(f, signerES(f, jwt.ES256, k.ec256), "kid", claims(nil))))
	f.Add([]byte(sign(f, signerEd(f, k.ed), "", claims(nil))))
	f.Add(unsigned(`{"alg":"none"}`, `{"sub":"x"}`))
	f.Add([]byte(`{"iss":"iss","aud":["aud"],"exp":1800000100,"nbf":1e2,"sub":"s"}`))
	f.Add([]byte(`{"exp":"1800000100","AUD":"aud"}`))
	f.Add([]byte("eyJ.eyJ."))
	f.Add([]byte(".."))
	known := []error{ErrMissing, ErrMalformed, ErrExpired, ErrNotYetValid, ErrBadSignature,
		ErrWrongIssuer, ErrWrongAudience, ErrUnknownKey, ErrAlgorithm}
	check := func(t *testing.T, res *Result, err error) {
		t.Helper()
		if err != nil {
			if res != nil || !slicesContainsErr(known, err) {
				t.Fatalf("Verify = %v, %v", res, err)
			}
			return
		}
		if _, derr := base64.RawURLEncoding.DecodeString(string(res.ClaimsB64)); derr != nil {
			t.Fatalf("ClaimsB64 %q is not base64url: %v", res.ClaimsB64, derr)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := v.Verify(data, testNow)
		check(t, res, err)
		tok, berr := jwt.NewBuilder(hs).Build(data)
		if berr != nil {
			return
		}
		res, err = v.Verify(tok.Bytes(), testNow)
		check(t, res, err)
	})
}

func slicesContainsErr(errs []error, err error) bool {
	for _, e := range errs {
		if err == e || errors.Is(err, e) {
			return true
		}
	}
	return false
}
