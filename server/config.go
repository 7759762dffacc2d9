package server

import (
	"io"
	"strconv"
)

// Config is what `edgeway serve`'s flags set. The zero value is the
// binary's defaults (see `edgeway help` or README's configuration
// table); a field left at its zero value leaves its flag at the default.
type Config struct {
	// FunctionsDir is the functions folder (--functions).
	FunctionsDir string
	// Deno is the Deno executable, a name on PATH or a path (--deno).
	Deno string
	// Host and Port are the address Listen and ListenAndServe listen on
	// (--host, --port). Port 0 is the default port (3100); to have the
	// system pick one, listen yourself and call Serve.
	Host string
	Port int
	// Dev relaxes the production checks for local development (--dev):
	// Supabase's well-known JWT secret when none is given, console logs.
	Dev bool
	// Auth is the built-in authentication (--auth): "jwt" (the default),
	// "apikey" (with APIKeysFile) or "none". Authenticator replaces it.
	Auth string
	// JWTSecret is the HS256 secret of --auth jwt (--jwt-secret).
	JWTSecret string
	// APIKeysFile is the key file of --auth apikey (--api-keys-file).
	APIKeysFile string

	// Flags sets any other serve flag as it is written on the command
	// line, e.g. []string{"--max-workers=4", "--idle-timeout", "30s"}.
	// They are parsed and validated by the command line's parser (an
	// unknown flag or bad value makes New fail); the fields above win
	// over the same flag given here.
	Flags []string
	// Getenv, when set, is where values of flags not given are read from
	// (EDGEWAY_<FLAG>, PORT, JWT_SECRET) as the binary reads its
	// environment; pass os.Getenv for that. Nil reads no environment.
	Getenv func(key string) string

	// Authenticator, when set, decides which requests may call a function
	// that is not public, instead of --auth (see Authenticator).
	Authenticator Authenticator
	// Hooks are called on the gateway's events; see Hooks.
	Hooks Hooks

	// LogOutput receives the gateway's log (JSON lines, or console lines
	// on a terminal or with Dev; --log-format, --log-level). Nil is
	// os.Stderr; io.Discard silences it. Workers' output is logged there
	// too, and also handed to Hooks.OnLog.
	LogOutput io.Writer
	// Version names the host program in the "edgeway listening" log line;
	// empty logs none.
	Version string
}

// args turns the config into serve's command line: Flags first, so that
// the fields, given after them, win.
func (c *Config) args() []string {
	args := append([]string(nil), c.Flags...)
	str := func(name, v string) {
		if v != "" {
			args = append(args, "--"+name+"="+v)
		}
	}
	str("functions", c.FunctionsDir)
	str("deno", c.Deno)
	str("host", c.Host)
	if c.Port != 0 {
		str("port", strconv.Itoa(c.Port))
	}
	if c.Dev {
		args = append(args, "--dev")
	}
	str("jwt-secret", c.JWTSecret)
	str("api-keys-file", c.APIKeysFile)
	if c.Authenticator != nil {
		// The custom authenticator replaces --auth: none keeps the
		// production check for a JWT key from refusing to start.
		args = append(args, "--auth=none")
	} else {
		str("auth", c.Auth)
	}
	return args
}

func (c *Config) getenv() func(string) string {
	if c.Getenv != nil {
		return c.Getenv
	}
	return func(string) string { return "" }
}
