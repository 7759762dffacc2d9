package secure

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cristalhq/jwt/v5"
)

// allKeysVerifier has the shared secret and one PEM file holding an RSA,
// three EC and an Ed25519 key.
func allKeysVerifier(t testing.TB, o VerifierOptions) *Verifier {
	t.Helper()
	k := keysOnce()
	o.Secret = []byte(testSecret)
	o.PublicKeyFile = writeFile(t, "keys.pem", pemOf(t,
		&k.rsa.PublicKey, &k.ec256.PublicKey, &k.ec384.PublicKey, &k.ec521.PublicKey, k.ed.Public()))
	return newTestVerifier(t, o)
}

func TestVerifyValid(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	v := allKeysVerifier(t, VerifierOptions{})
	tests := []struct {
		name   string
		signer jwt.Signer
	}{
		{"HS256", signerHS(t, jwt.HS256, []byte(testSecret))},
		{"HS384", signerHS(t, jwt.HS384, []byte(testSecret))},
		{"HS512", signerHS(t, jwt.HS512, []byte(testSecret))},
		{"RS256", signerRS(t, jwt.RS256, k.rsa)},
		{"RS512", signerRS(t, jwt.RS512, k.rsa)},
		{"PS256", signerRS(t, jwt.PS256, k.rsa)},
		{"PS384", signerRS(t, jwt.PS384, k.rsa)},
		{"ES256", signerES(t, jwt.ES256, k.ec256)},
		{"ES384", signerES(t, jwt.ES384, k.ec384)},
		{"ES512", signerES(t, jwt.ES512, k.ec521)},
		{"EdDSA", signerEd(t, k.ed)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := sign(t, tt.signer, "", claims(nil))
			res, err := v.Verify(tok, testNow)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			_, c, _ := segments(tok)
			if string(res.ClaimsB64) != c {
				t.Errorf("ClaimsB64 = %q, want %q", res.ClaimsB64, c)
			}
			if string(res.Sub) != "user-1" {
				t.Errorf("Sub = %q", res.Sub)
			}
			if want := testNow.Add(time.Hour); !res.Expires.Equal(want) {
				t.Errorf("Expires = %v, want %v", res.Expires, want)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	const skew = 30 * time.Second
	v := allKeysVerifier(t, VerifierOptions{ClockSkew: skew})
	hs := signerHS(t, jwt.HS256, []byte(testSecret))
	good := sign(t, hs, "", claims(nil))
	h, c, s := segments(good)
	_, otherClaims, _ := segments(sign(t, hs, "", claims(map[string]any{"role": "service_role"})))
	flip := func(seg string) string {
		if seg[0] == 'A' {
			return "B" + seg[1:]
		}
		return "A" + seg[1:]
	}
	tests := []struct {
		name  string
		token []byte
		want  error
	}{
		{"missing", nil, ErrMissing},
		{"empty", []byte{}, ErrMissing},
		{"one segment", []byte("abc"), ErrMalformed},
		{"two segments", []byte(h + "." + c), ErrMalformed},
		{"four segments", []byte(h + "." + c + "." + s + ".x"), ErrMalformed},
		{"empty header", []byte("." + c + "." + s), ErrMalformed},
		{"padding", []byte(h + "=." + c + "." + s), ErrMalformed},
		{"newline inside", []byte(h + "." + c[:4] + "\r\n" + c[4:] + "." + s), ErrMalformed},
		{"space inside", []byte(h + " ." + c + "." + s), ErrMalformed},
		{"header not json", unsigned(`not json`, `{}`), ErrMalformed},
		{"oversized", []byte(h + "." + strings.Repeat("A", MaxTokenLength) + "." + s), ErrMalformed},
		{"tampered payload", []byte(h + "." + otherClaims + "." + s), ErrBadSignature},
		{"tampered signature", []byte(h + "." + c + "." + flip(s)), ErrBadSignature},
		{"signature stripped", []byte(h + "." + c + "."), ErrBadSignature},
		{"alg none", unsigned(`{"alg":"none","typ":"JWT"}`, `{"sub":"admin"}`), ErrAlgorithm},
		{"alg None", unsigned(`{"alg":"None"}`, `{"sub":"admin"}`), ErrAlgorithm},
		{"alg empty", unsigned(`{"typ":"JWT"}`, `{"sub":"admin"}`), ErrAlgorithm},
		{"alg unknown", []byte(strings.Replace(string(good), h, b64(`{"alg":"HS1","typ":"JWT"}`), 1)), ErrAlgorithm},
		{"wrong secret", sign(t, signerHS(t, jwt.HS256, []byte("another-secret-0123456789-0123456789")), "", claims(nil)), ErrBadSignature},
		{"other RSA key", sign(t, signerRS(t, jwt.RS256, k.rsa2), "", claims(nil)), ErrBadSignature},
		{"other P-256 key", sign(t, signerES(t, jwt.ES256, k.ec256b), "", claims(nil)), ErrBadSignature},
		{"ES384 claimed by a P-256 signature", []byte(swapAlg(t, sign(t, signerES(t, jwt.ES256, k.ec256), "", claims(nil)), "ES384")), ErrBadSignature},
		{"RS256 header on an ES256 token", []byte(swapAlg(t, sign(t, signerES(t, jwt.ES256, k.ec256), "", claims(nil)), "RS256")), ErrBadSignature},
		{"expired beyond skew", sign(t, hs, "", claims(map[string]any{"exp": testNow.Add(-skew - time.Second).Unix()})), ErrExpired},
		{"not yet valid beyond skew", sign(t, hs, "", claims(map[string]any{"nbf": testNow.Add(skew + time.Minute).Unix()})), ErrNotYetValid},
		{"claims not an object", sign(t, hs, "", []byte(`["sub"]`)), ErrMalformed},
		{"claims null", sign(t, hs, "", []byte(`null`)), ErrMalformed},
		{"claims not json", sign(t, hs, "", []byte(`{"sub":`)), ErrMalformed},
		{"exp a word", sign(t, hs, "", []byte(`{"exp":"soon"}`)), ErrMalformed},
		{"exp null", sign(t, hs, "", []byte(`{"exp":null}`)), ErrMalformed},
		{"exp huge", sign(t, hs, "", []byte(`{"exp":1e300}`)), ErrMalformed},
		{"nbf huge", sign(t, hs, "", []byte(`{"nbf":1e300}`)), ErrMalformed},
		{"exp negative", sign(t, hs, "", []byte(`{"exp":-5}`)), ErrMalformed},
		{"sub a number", sign(t, hs, "", claims(map[string]any{"sub": 42})), ErrMalformed},
		{"iss an object", sign(t, hs, "", claims(map[string]any{"iss": map[string]any{}})), ErrMalformed},
		{"aud a number", sign(t, hs, "", claims(map[string]any{"aud": 7})), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := v.Verify(tt.token, testNow)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, %v; want %v", res, err, tt.want)
			}
			if res != nil {
				t.Errorf("non-nil result with error %v", err)
			}
		})
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// swapAlg replaces a token's header with one claiming alg, keeping the
// claims and signature.
func swapAlg(t *testing.T, tok []byte, alg string) string {
	t.Helper()
	_, c, s := segments(tok)
	return b64(`{"alg":"`+alg+`","typ":"JWT"}`) + "." + c + "." + s
}

func TestVerifyClockSkew(t *testing.T) {
	t.Parallel()
	const skew = 30 * time.Second
	v := newTestVerifier(t, VerifierOptions{Secret: []byte(testSecret), ClockSkew: skew, CacheSize: -1})
	hs := signerHS(t, jwt.HS256, []byte(testSecret))
	tests := []struct {
		name string
		c    map[string]any
		want error
	}{
		{"expired within skew", map[string]any{"exp": testNow.Add(-skew / 2).Unix()}, nil},
		{"expired at the skew edge", map[string]any{"exp": testNow.Add(-skew).Unix()}, ErrExpired},
		{"nbf within skew", map[string]any{"nbf": testNow.Add(skew / 2).Unix()}, nil},
		{"nbf past", map[string]any{"nbf": testNow.Add(-time.Hour).Unix()}, nil},
		{"nbf at the skew edge", map[string]any{"nbf": testNow.Add(skew).Unix()}, ErrNotYetValid},
		{"no exp", map[string]any{"exp": nil}, nil},
		{"fractional exp", map[string]any{"exp": float64(testNow.Unix()) + 0.5}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(sign(t, hs, "", claims(tt.c)), testNow)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyNoExpAccepted(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, VerifierOptions{Secret: []byte(testSecret)})
	tok := sign(t, signerHS(t, jwt.HS256, []byte(testSecret)), "", []byte(`{"role":"anon"}`))
	res, err := v.Verify(tok, testNow.Add(100*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Expires.IsZero() || res.Sub != nil {
		t.Errorf("Expires = %v, Sub = %q; want zero and nil", res.Expires, res.Sub)
	}
}

func TestVerifyIssuerAudience(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, VerifierOptions{Secret: []byte(testSecret), Issuer: "https://x.supabase.co/auth/v1", Audience: "authenticated"})
	hs := signerHS(t, jwt.HS256, []byte(testSecret))
	const iss = "https://x.supabase.co/auth/v1"
	tests := []struct {
		name   string
		claims any
		want   error
	}{
		{"match", claims(map[string]any{"iss": iss, "aud": "authenticated"}), nil},
		{"aud in a list", claims(map[string]any{"iss": iss, "aud": []string{"other", "authenticated"}}), nil},
		{"wrong audience", claims(map[string]any{"iss": iss, "aud": "anon"}), ErrWrongAudience},
		{"no audience", claims(map[string]any{"iss": iss}), ErrWrongAudience},
		{"wrong issuer", claims(map[string]any{"iss": "supabase-demo", "aud": "authenticated"}), ErrWrongIssuer},
		{"no issuer", claims(map[string]any{"aud": "authenticated"}), ErrWrongIssuer},
		// encoding/json would match "AUD" to aud; the function would see
		// aud "anon" and edgeway must not have checked a different one.
		{"aud case trick", []byte(`{"iss":"` + iss + `","aud":"anon","AUD":"authenticated"}`), ErrWrongAudience},
		{"iss case trick", []byte(`{"iss":"evil","ISS":"` + iss + `","aud":"authenticated"}`), ErrWrongIssuer},
		{"duplicate aud, last wins", []byte(`{"iss":"` + iss + `","aud":"authenticated","aud":"anon"}`), ErrWrongAudience},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(sign(t, hs, "", tt.claims), testNow)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyHSWithPublicKeyAsSecret is the classic alg confusion: the
// attacker signs HS256 with the public key's PEM bytes as the secret.
func TestVerifyHSWithPublicKeyAsSecret(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	pemBytes := pemOf(t, &k.rsa.PublicKey)
	path := writeFile(t, "rsa.pem", pemBytes)
	forged := sign(t, signerHS(t, jwt.HS256, pemBytes), "", claims(nil))
	tests := []struct {
		name string
		o    VerifierOptions
		want error
	}{
		{"public key only", VerifierOptions{PublicKeyFile: path}, ErrAlgorithm},
		{"public key and a secret", VerifierOptions{PublicKeyFile: path, Secret: []byte(testSecret)}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, tt.o)
			if _, err := v.Verify(forged, testNow); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := NewVerifier(VerifierOptions{Secret: pemBytes}); err == nil {
		t.Error("NewVerifier accepted a PEM public key as the HMAC secret")
	}
}

func TestVerifyAlgorithmNotAllowedForKey(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	tests := []struct {
		name  string
		pem   []byte
		token []byte
	}{
		{"RS256 token, EC key only", pemOf(t, &k.ec256.PublicKey), sign(t, signerRS(t, jwt.RS256, k.rsa), "", claims(nil))},
		{"ES384 token, P-256 key only", pemOf(t, &k.ec256.PublicKey), sign(t, signerES(t, jwt.ES384, k.ec384), "", claims(nil))},
		{"ES256 token, P-384 key only", pemOf(t, &k.ec384.PublicKey), sign(t, signerES(t, jwt.ES256, k.ec256), "", claims(nil))},
		{"EdDSA token, RSA key only", pemOf(t, &k.rsa.PublicKey), sign(t, signerEd(t, k.ed), "", claims(nil))},
		{"HS256 token, no secret", pemOf(t, &k.rsa.PublicKey), sign(t, signerHS(t, jwt.HS256, []byte(testSecret)), "", claims(nil))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, VerifierOptions{PublicKeyFile: writeFile(t, "k.pem", tt.pem)})
			if _, err := v.Verify(tt.token, testNow); !errors.Is(err, ErrAlgorithm) {
				t.Fatalf("Verify = %v, want %v", err, ErrAlgorithm)
			}
		})
	}
}

func TestResultDoesNotAliasInput(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, VerifierOptions{Secret: []byte(testSecret)})
	tok := sign(t, signerHS(t, jwt.HS256, []byte(testSecret)), "", claims(nil))
	buf := bytes.Clone(tok)
	res, err := v.Verify(buf, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := string(res.ClaimsB64)
	for i := range buf {
		buf[i] = 'x' // fasthttp reuses its header buffers
	}
	if string(res.ClaimsB64) != want {
		t.Fatal("Result aliases the token buffer")
	}
	if again, err := v.Verify(tok, testNow); err != nil || again != res {
		t.Fatalf("second Verify = %p, %v; want the cached %p", again, err, res)
	}
}

func TestVerifierConcurrent(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, VerifierOptions{Secret: []byte(testSecret), CacheSize: 16})
	hs := signerHS(t, jwt.HS256, []byte(testSecret))
	toks := make([][]byte, 64)
	for i := range toks {
		toks[i] = sign(t, hs, "", claims(map[string]any{"n": i}))
	}
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 500; i++ {
				if _, err := v.Verify(toks[(i*7+g)%len(toks)], testNow); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.len(); n > 16 {
		t.Errorf("cache holds %d entries, bound 16", n)
	}
}
