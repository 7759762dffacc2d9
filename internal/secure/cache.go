package secure

import (
	"sync"
	"time"

	"github.com/cristalhq/jwt/v5"
)

// tokenCache maps the bytes of verified tokens to their results. Entries
// stay until their exp has passed (checked on every hit) or until the cache
// is full; a full cache first drops expired entries, then arbitrary ones,
// down to 7/8 of its bound, so the sweep costs O(1) per insert on average.
// Only tokens that verified are stored, so filling it takes valid tokens.
//
// A hit takes a read lock and a map lookup with m[string(b)], which the
// compiler does without allocating.
type tokenCache struct {
	mu  sync.RWMutex
	m   map[string]*cacheEntry
	max int
}

// cacheEntry is immutable once stored.
type cacheEntry struct {
	res   Result
	times jwt.RegisteredClaims // ExpiresAt and NotBefore only
	set   *keySet              // the keys that verified it
}

// newTokenCache returns nil (no cache) when size is negative.
func newTokenCache(size int) *tokenCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultCacheSize
	}
	return &tokenCache{m: make(map[string]*cacheEntry), max: size}
}

func (c *tokenCache) get(token []byte) *cacheEntry {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.m[string(token)]
	c.mu.RUnlock()
	return e
}

func (c *tokenCache) put(token string, e *cacheEntry, now time.Time, skew time.Duration) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		c.evict(now.Add(-skew))
	}
	c.m[token] = e
}

// evict drops the entries expired at cutoff, then arbitrary ones (map order
// is unspecified) down to 7/8 of the bound. The caller holds mu.
func (c *tokenCache) evict(cutoff time.Time) {
	for k, e := range c.m {
		if !e.times.IsValidExpiresAt(cutoff) {
			delete(c.m, k)
		}
	}
	target := c.max * 7 / 8
	for k := range c.m {
		if len(c.m) <= target {
			break
		}
		delete(c.m, k)
	}
}

// purge empties the cache; used when the JWKS keys change, so a token
// signed by a withdrawn key is verified again.
func (c *tokenCache) purge() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.m = make(map[string]*cacheEntry)
	c.mu.Unlock()
}

// len is for tests.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
