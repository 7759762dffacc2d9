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
		return nil, errors.New(Mask(raw, parseProblem(err)))
	}
	return opt, nil
}

// parseProblem is what go-redis found wrong, without the value it quotes:
// "invalid database number", never the text that followed. Its messages
// append the offending part of the URL (the path, an option's value),
// and what net/url reads as a path may be what the user meant as a
// password ("redis://host/:secret@x", found by FuzzParseURL).
func parseProblem(err error) string {
	msg := strings.TrimPrefix(err.Error(), "redis: ")
	if i := strings.Index(msg, ": "); i >= 0 {
		msg = msg[:i]
	}
	return msg + " (redis://[user:pass@]host:port/db[?option=value])"
}

// Redacted is the URL as safe to log or show: its password replaced, a
// path that is not a database number and any query shown as "…" (a
// malformed URL may carry a password where net/url sees a path).
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	out := url.URL{Scheme: u.Scheme, Host: u.Host}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			out.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			out.User = url.User(u.User.Username())
		}
	}
	s := out.String()
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if strings.Trim(db, "0123456789") == "" {
			s += "/" + db
		} else {
			s += "/…"
		}
	}
	if u.RawQuery != "" {
		s += "?…"
	}
	return s
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
