package gateway

import (
	"net/netip"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/ratestore"
	"edgeway.dev/edgeway/internal/routable"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// errRateLimitUnavailable answers a request while the shared rate limit
// store is unreachable and --rate-limit-store-fail is closed.
var errRateLimitUnavailable = newError(fasthttp.StatusServiceUnavailable, "RATE_LIMIT_UNAVAILABLE", "rate limit unavailable; retry later")

// newRateStore builds the shared rate limit store of --rate-limit-store,
// or returns nil (each function's local limiter) without one. The URL was
// checked when the options were parsed.
func newRateStore(o config.Options, log zerolog.Logger) *ratestore.Store {
	if o.RateLimitStore == "" {
		return nil
	}
	s, err := ratestore.New(ratestore.Options{URL: o.RateLimitStore, Timeout: o.RateLimitStoreTimeout,
		FailClosed: o.RateLimitStoreFail == "closed", FailLocal: o.RateLimitStoreFail == "local", Prefix: o.RateLimitStorePrefix,
		ProbeInterval: o.RateLimitStoreRetry}, log)
	if err != nil {
		log.Error().Err(err).Msg("shared rate limit store not used; each instance limits on its own")
		return nil
	}
	log.Info().Str("store", s.URL()).Str("fail", s.FailMode()).Msg("rate limits shared through the store")
	return s
}

// rateLimit runs the rate limit guard of admit, with the shared store when
// there is one, else the function's own limiter. It answers and returns
// false when the request is refused.
func (g *Gateway) rateLimit(ctx *fasthttp.RequestCtx, fn *routable.Function, client netip.Addr, key []byte, now time.Time) bool {
	var ok bool
	var retry time.Duration
	if g.rateStore != nil {
		res := g.rateStore.Allow(fn.Name, fn.Config.RPM, key)
		switch {
		case res.Local:
			// Store down, fail mode local: this instance's own budget.
			ok, retry = fn.RateLimiter.Allow(key, now)
		case res.Unchecked && !res.Allowed:
			errRateLimitUnavailable.writeRetryAfter(ctx, res.RetryAfter)
			fn.Metrics.Refuse("RATE_LIMIT_UNAVAILABLE")
			return false
		default:
			ok, retry = res.Allowed, res.RetryAfter
		}
	} else {
		ok, retry = fn.RateLimiter.Allow(key, now)
	}
	if ok {
		return true
	}
	fn.Metrics.RateLimited.Inc()
	errRateLimited.writeRetryAfter(ctx, retry)
	fn.Metrics.Refuse("RATE_LIMITED")
	g.logRateLimited(ctx, fn, client, key[0] == 's', retry, now)
	return false
}

// rateStoreHealth is the store's part of the detailed /health document.
type rateStoreHealth struct {
	URL  string `json:"url"` // password masked
	Up   bool   `json:"up"`
	Fail string `json:"fail"`
}

func (g *Gateway) rateStoreHealth() *rateStoreHealth {
	if g.rateStore == nil {
		return nil
	}
	return &rateStoreHealth{URL: g.rateStore.URL(), Up: g.rateStore.Up(), Fail: g.rateStore.FailMode()}
}
