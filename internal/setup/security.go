package setup

import (
	"fmt"
	"strings"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/gateway"
	"edgeway.dev/edgeway/internal/guard"
	"edgeway.dev/edgeway/internal/secure"

	"github.com/rs/zerolog"
)

// BuildSecurity applies the --dev / production rules and builds the token
// verifier, CORS policy and trusted proxies. Production (no --dev) refuses
// to start with a well-known or short JWT secret, or with no key at all
// unless --auth none says so.
func BuildSecurity(opts *config.Options, log zerolog.Logger) (gateway.Security, error) {
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
	switch {
	case opts.Auth == "apikey":
		keys, err := loadAPIKeys(opts, log)
		if err != nil {
			return sec, err
		}
		sec.Auth = keys
	case opts.APIKeysFile != "":
		return sec, fmt.Errorf("%s: needs --auth apikey", opts.Source("api-keys-file"))
	case opts.Auth == "none":
		sec.Auth = gateway.NoAuth{}
	}
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
		sec.Auth = &gateway.JWTAuth{Verifier: v, From: from, Name: opts.JWTTokenName}
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

// loadAPIKeys loads --api-keys-file for --auth apikey at startup.
func loadAPIKeys(opts *config.Options, log zerolog.Logger) (*secure.APIKeys, error) {
	keys, err := readAPIKeys(opts, log)
	if err != nil {
		return nil, err
	}
	log.Info().Str("file", opts.APIKeysFile).Int("keys", keys.Len()).Msg("API keys loaded")
	return keys, nil
}

// readAPIKeys reads and checks --api-keys-file. Production refuses a file
// without keys (every non-public function would refuse every request);
// --dev only warns.
func readAPIKeys(opts *config.Options, log zerolog.Logger) (*secure.APIKeys, error) {
	if opts.APIKeysFile == "" {
		return nil, fmt.Errorf("flag --auth apikey: needs --api-keys-file")
	}
	keys, err := secure.LoadAPIKeys(opts.APIKeysFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.Source("api-keys-file"), err)
	}
	if keys.Len() == 0 {
		if !opts.Dev {
			return nil, fmt.Errorf("%s: %s has no keys (every function that is not public would refuse every request)", opts.Source("api-keys-file"), opts.APIKeysFile)
		}
		log.Warn().Str("file", opts.APIKeysFile).Msg("--auth apikey: the key file has no keys; every function that is not public refuses every request")
	}
	return keys, nil
}

// ReloadAPIKeys reads --api-keys-file again into keys (on SIGHUP), make
// before break: the new file replaces the keys only once it has been read
// and checked whole, as at startup. A file that cannot be read or parsed,
// or that has no keys in production, leaves the keys in force and is
// logged as an error naming the file and, for a bad line, its number.
func ReloadAPIKeys(opts *config.Options, keys *secure.APIKeys, log zerolog.Logger) error {
	next, err := readAPIKeys(opts, log)
	if err != nil {
		log.Error().Err(err).Str("file", opts.APIKeysFile).Int("keys", keys.Len()).
			Msg("API key file not reloaded; the keys loaded before stay in force")
		return err
	}
	keys.Replace(next)
	log.Info().Str("file", opts.APIKeysFile).Int("keys", keys.Len()).Msg("API keys reloaded")
	return nil
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
