package gateway

import (
	"net/netip"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// untrustedForwarderWarned: the warning below is given once per process.
var untrustedForwarderWarned atomic.Bool

// warnUntrustedForwarder logs, once, a request carrying X-Forwarded-For from
// a peer on a private or loopback network that --trusted-proxies does not
// name: most likely a reverse proxy edgeway was not told about, so every
// client behind it gets the proxy's address, shares one rate-limit bucket,
// and functions see the wrong client. Public peers are not reported: a
// client may send the header itself. After the warning this costs one
// atomic load.
func (g *Gateway) warnUntrustedForwarder(ctx *fasthttp.RequestCtx, peer netip.Addr) {
	if untrustedForwarderWarned.Load() || !(peer.IsPrivate() || peer.IsLoopback()) {
		return
	}
	for _, p := range g.trusted {
		if p.Contains(peer) {
			return
		}
	}
	if len(ctx.Request.Header.PeekBytes(hdrXForwardedFor)) == 0 {
		return
	}
	if untrustedForwarderWarned.CompareAndSwap(false, true) {
		g.log.Warn().Str("peer", peer.String()).
			Msg("X-Forwarded-For from a private-network peer that is not a trusted proxy: its clients all get its address (one rate-limit bucket); if it is your proxy, add it to --trusted-proxies (warned once)")
	}
}
