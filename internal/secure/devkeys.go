package secure

import (
	"bytes"
	"errors"
	"fmt"
)

// Supabase's well-known local development credentials. Every `supabase
// start` stack and many tutorials use them, so a gateway running with them
// accepts tokens anyone can mint.
const (
	// DevJWTSecret is the local stack's JWT secret.
	DevJWTSecret = "super-secret-jwt-token-with-at-least-32-characters-long"

	// DevSelfHostedJWTSecret is the JWT secret of the self-hosted Docker
	// stack's example environment file.
	DevSelfHostedJWTSecret = "your-super-secret-jwt-token-with-at-least-32-characters-long"

	// DevAnonKey is the local anon key: HS256 with DevJWTSecret,
	// {"iss":"supabase-demo","role":"anon","exp":1983812996}.
	DevAnonKey = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
		"eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9." +
		"CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"

	// DevServiceRoleKey is the local service_role key: HS256 with
	// DevJWTSecret,
	// {"iss":"supabase-demo","role":"service_role","exp":1983812996}.
	DevServiceRoleKey = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
		"eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0." +
		"EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)

// MinProductionSecretLength is the shortest JWT secret CheckProductionSecret
// accepts, in bytes (HS256 wants a key as long as its hash, RFC 7518 §3.2).
const MinProductionSecretLength = 32

var devSecrets = []string{DevJWTSecret, DevSelfHostedJWTSecret}

// CheckProductionSecret returns an error when secret is a well-known
// development value or shorter than MinProductionSecretLength bytes. The
// error never contains the secret.
func CheckProductionSecret(secret []byte) error {
	trimmed := bytes.TrimSpace(secret)
	for _, dev := range devSecrets {
		if string(trimmed) == dev {
			return errors.New("the JWT secret is a well-known Supabase development secret; set your project's own")
		}
	}
	if len(secret) < MinProductionSecretLength {
		return fmt.Errorf("the JWT secret is %d bytes; production needs at least %d", len(secret), MinProductionSecretLength)
	}
	return nil
}

// IsDevelopmentKey reports whether key is one of Supabase's well-known local
// anon or service_role keys.
func IsDevelopmentKey(key string) bool {
	return key == DevAnonKey || key == DevServiceRoleKey
}
