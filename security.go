package main

import (
	"fmt"
	"strings"

	"edgeway/config"
	"edgeway/gateway"
	"edgeway/gateway/guard"
	"edgeway/secure"

	"github.com/rs/zerolog"
)

// buildSecurity applies the --dev / production rules and builds the token
// verifier, CORS policy and trusted proxies. Production (no --dev) refuses
// to start with a well-known or short JWT secret, or with no key at all
// unless --auth none says so.
func buildSecurity(opts *config.Options, log zerolog.Logger) (gateway.Security, error) {
	var sec gateway.Security
	noKey := opts.JWTSecret == "" && opts.JWTPublicKey == "" && opts.JWKSURL == ""
	if opts.Dev {
		if noKey && opts.Auth == "jwt" {
			opts.JWTSecret = secure.DevJWTSecret
			noKey = false
			log.Warn().Msg("--dev: using Supabase's well-known local JWT secret; never use it in production")
		}
	} else if opts.Auth == "jwt" {
		if noKey {
			return sec, fmt.Errorf("flag --auth: no JWT key configured (give --jwt-secret, --jwt-public-key or --jwks-url; or --auth none when a proxy authenticates; or --dev for local development)")
		}
		if opts.JWTSecret != "" {
			if err := secure.CheckProductionSecret([]byte(opts.JWTSecret)); err != nil {
				return sec, fmt.Errorf("%s: %w (use --dev for local development)", opts.Source("jwt-secret"), err)
			}
		}
	}
	from, err := secure.ParseTokenSource(opts.JWTTokenFrom)
	if err != nil {
		return sec, fmt.Errorf("flag --jwt-token-from: %w", err)
	}
	sec.TokenFrom = from
	if opts.Auth == "jwt" {
		v, err := secure.NewVerifier(secure.VerifierOptions{
			Secret:         []byte(opts.JWTSecret),
			PublicKeyFile:  opts.JWTPublicKey,
			JWKSURL:        opts.JWKSURL,
			JWKSRefresh:    opts.JWKSRefresh,
			JWKSMinRefresh: opts.JWKSMinRefresh,
			Issuer:         opts.JWTIssuer,
			Audience:       opts.JWTAudience,
			ClockSkew:      opts.JWTClockSkew,
			CacheSize:      opts.JWTCacheSize,
			Log:            log,
		})
		if err != nil {
			return sec, fmt.Errorf("JWT verification: %w", err)
		}
		sec.Verifier = v
	}
	// Functions own CORS (as on Supabase) unless --cors-origins is given.
	sec.CORS = guard.NewCORS(guard.CORSOptions{Origins: splitList(opts.CORSOrigins), AllowHeaders: strings.Join(splitList(opts.CORSAllowHeaders), ", ")})
	if proxies := trustedProxyList(opts.TrustedProxies); len(proxies) > 0 {
		trusted, err := guard.ParseTrustedProxies(strings.Join(proxies, ","))
		if err != nil {
			return sec, fmt.Errorf("flag --trusted-proxies: %w", err)
		}
		sec.Trusted = trusted
	}
	return sec, nil
}

// trustedProxyList is --trusted-proxies without "none", which stands for
// no trusted peer (an empty value cannot be told from an unset one).
func trustedProxyList(items []string) []string {
	var out []string
	for _, p := range splitList(items) {
		if p != "none" {
			out = append(out, p)
		}
	}
	return out
}

// splitList flattens repeatable, comma-separated flag values.
func splitList(items []string) []string {
	var out []string
	for _, item := range items {
		for _, v := range strings.Split(item, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}
