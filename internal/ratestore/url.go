package ratestore

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParseURL reads a store URL: redis://[user:pass@]host:port/db or
// rediss:// (TLS). Its errors never quote the URL, which may hold a
// password.
func ParseURL(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL (redis://[user:pass@]host:port/db or rediss://...)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("scheme must be redis or rediss, not %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, errors.New("no host (redis://[user:pass@]host:port/db)")
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		// go-redis's messages name a part (port, db, option), not the
		// password; strip it anyway should one ever be quoted.
		return nil, errors.New(Mask(raw, err.Error()))
	}
	return opt, nil
}

// Redacted is the URL as safe to log or show: its password replaced.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Mask replaces the URL's password, wherever it appears in s, with xxxxx.
func Mask(raw, s string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return s
	}
	if p, ok := u.User.Password(); ok && p != "" {
		s = strings.ReplaceAll(s, p, "xxxxx")
		if esc := url.QueryEscape(p); esc != p {
			s = strings.ReplaceAll(s, esc, "xxxxx")
		}
	}
	return s
}
