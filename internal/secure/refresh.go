package secure

import (
	"time"

	"edgeway.dev/edgeway/internal/observe"
)

// refreshJWKS fetches the JWKS unless the refresh floor forbids it, and
// publishes the new keys if they changed. seen is the key set the caller
// found lacking. It reports whether a set newer than seen is now in place,
// so the caller should try again.
func (v *Verifier) refreshJWKS(seen *keySet) bool {
	if v.jwks == nil {
		return false
	}
	s := v.jwks
	s.mu.Lock()
	defer s.mu.Unlock()
	if v.keys.Load() != seen {
		return true // another caller refreshed while this one waited
	}
	if s.now().Sub(s.last) < s.minGap {
		return false
	}
	keys, changed, skipped, err := s.fetchKeys(v.ctx)
	if err != nil {
		if v.ctx.Err() != nil {
			return false // closing
		}
		v.log.Warn().Err(err).Str("url", s.url).Int("keys_kept", len(seen.jwks)).
			Msg("JWKS refresh failed; keeping the last good key set")
		return false
	}
	if !changed {
		return false
	}
	v.logSkipped(s.url, skipped)
	v.keys.Store(seen.withJWKS(keys))
	v.cache.purge()
	v.log.Info().Str("url", s.url).Int("keys", len(keys)).Msg("JWKS keys changed")
	return true
}

// refreshLoop refreshes the JWKS every period until Close.
func (v *Verifier) refreshLoop(period time.Duration) {
	defer close(v.done)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-t.C:
			v.refreshOnce()
		}
	}
}

// refreshOnce is one background refresh. A panic is recovered, counted in
// edgeway_panics_total{where="jwks"} and logged (its stack once): the last
// good keys stay in place and the loop tries again at its next tick, the
// refresh period being its backoff.
func (v *Verifier) refreshOnce() {
	defer func() {
		if r := recover(); r != nil {
			observe.Recovered(v.log, observe.PanicJWKS, r)
		}
	}()
	v.refreshJWKS(v.keys.Load())
}

func (v *Verifier) logSkipped(url string, skipped []error) {
	for _, err := range skipped {
		v.log.Warn().Err(err).Str("url", url).Msg("JWKS key skipped")
	}
}
