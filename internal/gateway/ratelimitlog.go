package gateway

import (
	"net/netip"
	"sync/atomic"
	"time"

	"edgeway.dev/edgeway/internal/routable"

	"github.com/valyala/fasthttp"
)

// rateLimitLogEvery spaces the "request refused: rate limited" warnings: a
// client hammering a function must not flood the log, yet an operator
// should see at warn level that clients are refused (behind a proxy that
// is not in --trusted-proxies, all of them at once).
const rateLimitLogEvery = 10 * time.Second

// rateLimitLog samples those warnings for the whole process: the first
// 429 is logged, then at most one per rateLimitLogEvery, carrying how many
// went unlogged since the previous one.
var rateLimitLog struct {
	next       atomic.Int64 // unix nanoseconds before which nothing is logged
	suppressed atomic.Int64
}

// logRateLimited warns about a 429, sampled (see rateLimitLog). bySub
// tells whether the bucket is the token's subject rather than the address.
func (g *Gateway) logRateLimited(ctx *fasthttp.RequestCtx, fn *routable.Function, client netip.Addr, bySub bool, retry time.Duration, now time.Time) {
	next := rateLimitLog.next.Load()
	if now.UnixNano() < next || !rateLimitLog.next.CompareAndSwap(next, now.Add(rateLimitLogEvery).UnixNano()) {
		rateLimitLog.suppressed.Add(1)
		return
	}
	key := "client_ip"
	if bySub {
		key = "sub"
	}
	g.log.Warn().Bytes("request_id", ctx.Request.Header.PeekBytes(hdrRequestID)).Str("function", fn.Name).Str("client_ip", client.String()).Str("bucket", key).
		Int("rpm", fn.Config.RPM).Dur("retry_after_ms", retry).Int64("unlogged_since_last", rateLimitLog.suppressed.Swap(0)).
		Msg("request refused: rate limited (429; sampled: at most one line per 10s)")
}
