package config

import (
	"strings"
	"testing"
	"time"
)

func TestRateLimitStoreOptions(t *testing.T) {
	const pw = "hunter2-secret"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // substring; "" = no error
		check   func(o Options) bool
	}{
		{name: "default is the local limiter", check: func(o Options) bool {
			return o.RateLimitStore == "" && o.RateLimitStoreFail == "open" && o.RateLimitStoreTimeout == 100*time.Millisecond && o.RateLimitStorePrefix == "edgeway:rl:"
		}},
		{name: "redis URL", args: []string{"--rate-limit-store", "redis://u:" + pw + "@redis:6379/2"}, check: func(o Options) bool { return o.RateLimitStore == "redis://u:"+pw+"@redis:6379/2" }},
		{name: "from the environment", env: map[string]string{"EDGEWAY_RATE_LIMIT_STORE": "rediss://redis:6380/0", "EDGEWAY_RATE_LIMIT_STORE_FAIL": "closed"},
			check: func(o Options) bool {
				return o.RateLimitStore == "rediss://redis:6380/0" && o.RateLimitStoreFail == "closed"
			}},
		{name: "bad scheme, password not quoted", args: []string{"--rate-limit-store", "http://u:" + pw + "@redis:6379/0"}, wantErr: "flag --rate-limit-store: http://u:xxxxx@redis:6379/0: scheme must be redis or rediss"},
		{name: "bad db in the environment", env: map[string]string{"EDGEWAY_RATE_LIMIT_STORE": "redis://u:" + pw + "@redis:6379/x"}, wantErr: "environment EDGEWAY_RATE_LIMIT_STORE"},
		{name: "unparsable URL", args: []string{"--rate-limit-store", "redis://u:" + pw + "@redis:6379/0\x7f"}, wantErr: "not a URL"},
		{name: "zero timeout", args: []string{"--rate-limit-store", "redis://redis:6379/0", "--rate-limit-store-timeout", "0s"}, wantErr: "flag --rate-limit-store-timeout must be above 0"},
		{name: "zero retry", args: []string{"--rate-limit-store", "redis://redis:6379/0", "--rate-limit-store-retry", "0s"}, wantErr: "flag --rate-limit-store-retry must be above 0"},
		{name: "zero timeout without a store is fine", args: []string{"--rate-limit-store-timeout", "0s"}},
		{name: "fail mode", args: []string{"--rate-limit-store-fail", "sometimes"}, wantErr: "must be one of open|closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Parse(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), pw) {
					t.Fatalf("error quotes the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil && !tt.check(o) {
				t.Fatalf("options: %+v", o)
			}
		})
	}
}
