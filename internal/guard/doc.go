// Package guard holds the request guards of edgeway's front door: the checks
// a request passes before it may claim a Deno worker, and the bookkeeping a
// response feeds back.
//
// Each guard is a small value built once, when a function is loaded, from an
// options struct whose zero value is usable; every default is an exported
// constant. Every method on a request path is safe for concurrent use and
// allocates nothing in steady state. Methods that depend on time take the
// current time as an argument, so callers pass time.Now() once per request
// and tests control the clock.
//
// A gateway wires them in this order:
//
//  1. CORS.Preflight answers browser preflights; CORS.Apply decorates every
//     other response.
//  2. ClientIP (or ClientIPHeaders, for repeated headers) resolves the
//     caller's address from RemoteAddr and X-Forwarded-For behind the
//     trusted proxies ParseTrustedProxies reads from configuration.
//  3. RateLimiter.Allow spends a token from the caller's bucket (429 with
//     Retry-After when empty); memory stays within MaxKeys buckets.
//  4. Breaker.Allow refuses calls to a failing function (503 with
//     Retry-After); Breaker.Report records each outcome afterwards.
//  5. LatencyRing.Record keeps recent durations for health and metrics.
//
// A nil *RateLimiter, *Breaker or *CORS lets everything through, so a
// disabled guard costs one nil check.
package guard
