// Package ratestore keeps per-client rate limits in Redis, so several
// edgeway instances share one budget per client and function
// (--rate-limit-store). Each request is one EVALSHA of a small GCRA script:
// one round trip, atomic in Redis, with Redis's clock, so the instances'
// clocks do not matter. A store that fails or is slower than its timeout is
// bypassed (fail open, refuse with --rate-limit-store-fail closed, or each
// instance's local limiter with local) until
// a background probe reaches it again; an outage logs one line when it
// starts and one when it ends.
package ratestore
