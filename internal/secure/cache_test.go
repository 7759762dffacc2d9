package secure

import (
	"errors"
	"testing"
	"time"

	"github.com/cristalhq/jwt/v5"
)

func TestCacheHitDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	v := newTestVerifier(t, VerifierOptions{Secret: []byte(testSecret)})
	tok := sign(t, signerHS(t, jwt.HS256, []byte(testSecret)), "", claims(nil))
	if _, err := v.Verify(tok, testNow); err != nil {
		t.Fatal(err)
	}
	var err error
	allocs := testing.AllocsPerRun(1000, func() {
		_, err = v.Verify(tok, testNow)
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Fatalf("a cache hit allocates %.1f times, want 0", allocs)
	}
	// A rejected hit (expired by now) must not allocate either.
	allocs = testing.AllocsPerRun(1000, func() {
		_, err = v.Verify(tok, testNow.Add(2*time.Hour))
	})
	if !errors.Is(err, ErrExpired) || allocs != 0 {
		t.Fatalf("expired hit: %v with %.1f allocs, want %v with 0", err, allocs, ErrExpired)
	}
}

func TestCacheHitChecksTimes(t *testing.T) {
	t.Parallel()
	const skew = 10 * time.Second
	v := newTestVerifier(t, VerifierOptions{Secret: []byte(testSecret), ClockSkew: skew})
	tok := sign(t, signerHS(t, jwt.HS256, []byte(testSecret)), "", claims(map[string]any{
		"nbf": testNow.Add(-time.Minute).Unix(),
		"exp": testNow.Add(time.Minute).Unix(),
	}))
	first, err := v.Verify(tok, testNow)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		at   time.Time
		want error
	}{
		{"same time", testNow, nil},
		{"just before exp plus skew", testNow.Add(time.Minute + skew - time.Second), nil},
		{"after exp plus skew", testNow.Add(time.Minute + skew), ErrExpired},
		{"before nbf minus skew", testNow.Add(-time.Minute - skew), ErrNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := v.Verify(tok, tt.at)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err == nil && res != first {
				t.Error("not served from the cache")
			}
		})
	}
}

func TestCacheBound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		size     int
		tokens   int
		wantMax  int
		wantSame bool // a repeated Verify returns the cached *Result
	}{
		{"default", 0, 50, 50, true},
		{"bounded", 8, 50, 8, true},
		{"one entry", 1, 5, 1, true},
		{"disabled", -1, 5, 0, false},
	}
	hs := signerHS(t, jwt.HS256, []byte(testSecret))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, VerifierOptions{Secret: []byte(testSecret), CacheSize: tt.size})
			var last []byte
			for i := 0; i < tt.tokens; i++ {
				last = sign(t, hs, "", claims(map[string]any{"n": i}))
				if _, err := v.Verify(last, testNow); err != nil {
					t.Fatal(err)
				}
				if v.cache != nil && v.cache.len() > tt.wantMax {
					t.Fatalf("after %d tokens the cache holds %d, bound %d", i+1, v.cache.len(), tt.wantMax)
				}
			}
			a, _ := v.Verify(last, testNow)
			b, _ := v.Verify(last, testNow)
			if (a == b) != tt.wantSame {
				t.Errorf("same *Result = %v, want %v", a == b, tt.wantSame)
			}
		})
	}
}

func TestCacheEvictsExpiredFirst(t *testing.T) {
	t.Parallel()
	c := newTokenCache(4)
	exp := func(d time.Duration) *cacheEntry {
		return &cacheEntry{times: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(testNow.Add(d))}}
	}
	c.put("old-1", exp(time.Second), testNow, 0)
	c.put("live-1", exp(time.Hour), testNow, 0)
	c.put("old-2", exp(time.Second), testNow, 0)
	c.put("live-2", exp(time.Hour), testNow, 0)
	c.put("new", exp(time.Hour), testNow.Add(time.Minute), 0) // full: the two expired go
	for _, k := range []string{"live-1", "live-2", "new"} {
		if c.get([]byte(k)) == nil {
			t.Errorf("%s was evicted", k)
		}
	}
	for _, k := range []string{"old-1", "old-2"} {
		if c.get([]byte(k)) != nil {
			t.Errorf("expired %s was kept", k)
		}
	}
}

// TestCacheEntryOfOldKeySet covers a JWKS change racing with a cache insert:
// the entry verified with the old keys must not be served.
func TestCacheEntryOfOldKeySet(t *testing.T) {
	t.Parallel()
	k := keysOnce()
	srv := newJWKSServer(t, jwkRSA("k1", &k.rsa.PublicKey))
	v := jwksVerifier(t, srv, newFakeClock(), nil)
	tok := sign(t, signerRS(t, jwt.RS256, k.rsa), "k1", claims(nil))
	if _, err := v.Verify(tok, testNow); err != nil {
		t.Fatal(err)
	}
	v.keys.Store(v.keys.Load().withJWKS(nil)) // k1 withdrawn, cache not purged
	if _, err := v.Verify(tok, testNow); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Verify = %v, want %v", err, ErrUnknownKey)
	}
}
