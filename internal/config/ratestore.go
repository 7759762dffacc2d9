package config

import (
	"fmt"

	"edgeway.dev/edgeway/internal/ratestore"
)

// storeURLSpec is a rate limit store URL, checked when parsed. Its errors
// never quote the value: it may hold a password.
func storeURLSpec(name, usage string, dst func(*Options) *string) spec {
	return spec{name: name, usage: usage, set: func(o *Options, v string) error {
		if v == "" {
			*dst(o) = ""
			return nil
		}
		if _, err := ratestore.ParseURL(v); err != nil {
			return fmt.Errorf("%s: %w", ratestore.Redacted(v), err)
		}
		*dst(o) = v
		return nil
	}}
}

// checkRateLimitStore refuses store settings that would fail every call.
func checkRateLimitStore(o *Options) error {
	if o.RateLimitStore == "" {
		return nil
	}
	if o.RateLimitStoreTimeout <= 0 {
		return fmt.Errorf("%s must be above 0 with --rate-limit-store", o.Source("rate-limit-store-timeout"))
	}
	if o.RateLimitStoreRetry <= 0 {
		return fmt.Errorf("%s must be above 0 with --rate-limit-store", o.Source("rate-limit-store-retry"))
	}
	return nil
}
