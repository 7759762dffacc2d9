package secure

import (
	"strings"
	"testing"

	"github.com/cristalhq/jwt/v5"
)

// BenchmarkVerifyCacheHit is the steady state: the same token again.
func BenchmarkVerifyCacheHit(b *testing.B) {
	v := newTestVerifier(b, VerifierOptions{Secret: []byte(testSecret)})
	tok := sign(b, signerHS(b, jwt.HS256, []byte(testSecret)), "", claims(nil))
	if _, err := v.Verify(tok, testNow); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCacheHitParallel(b *testing.B) {
	v := newTestVerifier(b, VerifierOptions{Secret: []byte(testSecret)})
	tok := sign(b, signerHS(b, jwt.HS256, []byte(testSecret)), "", claims(nil))
	if _, err := v.Verify(tok, testNow); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok, testNow); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyCacheMiss verifies a new HS256 token every time, with the
// cache on: signature, claims, and the insert (evicting once full).
func BenchmarkVerifyCacheMiss(b *testing.B) {
	v := newTestVerifier(b, VerifierOptions{Secret: []byte(testSecret)})
	hs := signerHS(b, jwt.HS256, []byte(testSecret))
	const distinct = 1 << 14 // 4x DefaultCacheSize, so nearly every lookup misses
	toks := make([][]byte, distinct)
	for i := range toks {
		toks[i] = sign(b, hs, "", claims(map[string]any{"n": i}))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := v.Verify(toks[i%distinct], testNow); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerifyUncached is the cost per algorithm with the cache off.
func BenchmarkVerifyUncached(b *testing.B) {
	k := keysOnce()
	v := allKeysVerifier(b, VerifierOptions{CacheSize: -1})
	for _, bc := range []struct {
		name   string
		signer jwt.Signer
	}{
		{"HS256", signerHS(b, jwt.HS256, []byte(testSecret))},
		{"RS256", signerRS(b, jwt.RS256, k.rsa)},
		{"ES256", signerES(b, jwt.ES256, k.ec256)},
		{"EdDSA", signerEd(b, k.ed)},
	} {
		tok := sign(b, bc.signer, "", claims(nil))
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTokenFrom(b *testing.B) {
	ctx := requestCtx(b, "/", "Authorization", "Bearer "+strings.Repeat("x", 600))
	b.ReportAllocs()
	for b.Loop() {
		if TokenFrom(ctx, TokenFromHeader, "") == nil {
			b.Fatal("no token")
		}
	}
}

// BenchmarkMask runs a 20-secret Masker over a typical 170-byte log line.
func BenchmarkMask(b *testing.B) {
	env := map[string]string{}
	for i := 0; i < 20; i++ {
		env["SECRET_"+string(rune('A'+i))] = "s3cr3t-" + strings.Repeat(string(rune('a'+i)), 16)
	}
	m := NewMasker(env)
	line := `{"level":"info","fn":"hello","method":"POST","path":"/functions/v1/hello","status":200,"dur_ms":1.42,"ua":"supabase-js/2.45.0"}`
	for _, bc := range []struct{ name, line string }{
		{"NoMatch", line},
		{"Match", line + " token=" + env["SECRET_C"]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.line)))
			for b.Loop() {
				_ = m.Mask(bc.line)
			}
		})
	}
}

func BenchmarkParseDotEnv(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 50; i++ {
		sb.WriteString("# comment\nexport KEY_" + strings.Repeat("X", i%7) + `="value with \"quotes\" and \n escapes"` + "\nPLAIN=abc # c\n")
	}
	data := []byte(sb.String())
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseDotEnv(".env", data); err != nil {
			b.Fatal(err)
		}
	}
}
