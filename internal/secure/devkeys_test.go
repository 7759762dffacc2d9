package secure

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDevKeysValidateWithDevSecret(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, VerifierOptions{Secret: []byte(DevJWTSecret), Issuer: "supabase-demo"})
	tests := []struct {
		name, key, role string
	}{
		{"anon", DevAnonKey, "anon"},
		{"service_role", DevServiceRoleKey, "service_role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := v.Verify([]byte(tt.key), testNow)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := base64.RawURLEncoding.DecodeString(string(res.ClaimsB64))
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Iss  string `json:"iss"`
				Role string `json:"role"`
				Exp  int64  `json:"exp"`
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			if c.Iss != "supabase-demo" || c.Role != tt.role || c.Exp != 1983812996 {
				t.Errorf("claims %+v", c)
			}
			if !res.Expires.Equal(time.Unix(1983812996, 0)) {
				t.Errorf("Expires = %v", res.Expires)
			}
			if !IsDevelopmentKey(tt.key) {
				t.Error("IsDevelopmentKey = false")
			}
		})
	}
	if IsDevelopmentKey(DevAnonKey + "x") {
		t.Error("IsDevelopmentKey accepted a different key")
	}
}

func TestCheckProductionSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secret  string
		wantErr string
	}{
		{"local dev secret", DevJWTSecret, "well-known"},
		{"local dev secret with newline", DevJWTSecret + "\n", "well-known"},
		{"self-hosted example secret", DevSelfHostedJWTSecret, "well-known"},
		{"empty", "", "0 bytes"},
		{"short", "0123456789abcdef0123456789abcde", "31 bytes"},
		{"32 bytes", "0123456789abcdef0123456789abcdef", ""},
		{"long random", strings.Repeat("k7Q", 20), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckProductionSecret([]byte(tt.secret))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckProductionSecret = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Error("the error contains the secret")
			}
		})
	}
}
