package guard

import (
	"net/netip"
	"testing"
	"time"
)

// allocRuns is how many calls testing.AllocsPerRun averages over.
const allocRuns = 1000

// checkNoAllocs fails t if f allocates in steady state (after the warm-up
// call AllocsPerRun makes).
func checkNoAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	if got := testing.AllocsPerRun(allocRuns, f); got != 0 {
		t.Errorf("%s: %v allocs per call, want 0", name, got)
	}
}

func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	t.Run("RateLimiter", func(t *testing.T) {
		l := NewRateLimiter(RateLimitOptions{RPM: 60})
		key := []byte("user:0123456789abcdef")
		now := t0
		checkNoAllocs(t, "Allow, known key", func() {
			now = now.Add(time.Second)
			l.Allow(key, now)
		})
		checkNoAllocs(t, "Allow, refused", func() { l.Allow(key, now) })
		checkNoAllocs(t, "Allow, disabled", func() { (*RateLimiter)(nil).Allow(key, now) })
	})
	t.Run("Breaker", func(t *testing.T) {
		b := NewBreaker(BreakerOptions{})
		now := t0
		checkNoAllocs(t, "Allow and Report, closed", func() {
			b.Allow(now)
			b.Report(false, now)
		})
		for range DefaultWindow {
			b.Report(true, now)
		}
		checkNoAllocs(t, "Allow, open", func() { b.Allow(now) })
		checkNoAllocs(t, "State", func() { _ = b.State() })
		checkNoAllocs(t, "probe cycle", func() {
			now = now.Add(DefaultCooldown)
			b.Allow(now)
			b.Report(true, now)
		})
	})
	t.Run("ClientIP", func(t *testing.T) {
		trusted := mustTrusted(t, testTrusted)
		remote := netip.MustParseAddr("10.0.0.1")
		for _, xff := range []string{
			"1.2.3.4, 203.0.113.7, 10.0.0.2",
			"2001:db9::1, ::ffff:10.0.0.3",
			"spoofed, [::1]:80, 1.2.3.4:80",
		} {
			v := []byte(xff)
			checkNoAllocs(t, "ClientIP "+xff, func() { ClientIP(remote, v, trusted) })
			hs := [][]byte{v, []byte("10.0.0.9")}
			checkNoAllocs(t, "ClientIPHeaders "+xff, func() { ClientIPHeaders(remote, hs, trusted) })
		}
	})
	t.Run("CORS", func(t *testing.T) {
		c := NewCORS(CORSOptions{Origins: []string{appOrigin}, ExposeHeaders: "x-request-id"})
		star := NewCORS(CORSOptions{Origins: []string{AnyOrigin}})
		for _, origin := range []string{appOrigin, otherOrigin} {
			pre := newCtx("OPTIONS", "Origin: "+origin, "Access-Control-Request-Method: POST")
			checkNoAllocs(t, "Preflight "+origin, func() { c.Preflight(pre) })
			ask := newCtx("OPTIONS", "Origin: "+origin, "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization, traceparent")
			checkNoAllocs(t, "Preflight echo "+origin, func() { c.Preflight(ask) })
			get := newCtx("GET", "Origin: "+origin)
			get.Response.Header.Add("Vary", "Accept-Encoding")
			checkNoAllocs(t, "Apply "+origin, func() {
				get.Response.Header.Del("Vary")
				get.Response.Header.Add("Vary", "Accept-Encoding")
				c.Apply(get)
				star.Apply(get)
			})
		}
	})
	t.Run("LatencyRing", func(t *testing.T) {
		r := NewLatencyRing(0)
		checkNoAllocs(t, "Record", func() { r.Record(time.Millisecond) })
	})
}
