package config

import (
	"strings"
	"testing"
)

func TestShutdownDelayFitsInTheGrace(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: nil},
		{args: []string{"--shutdown-delay", "5s", "--shutdown-grace", "20s"}},
		{args: []string{"--shutdown-delay", "10s"}, wantErr: "flag --shutdown-delay (10s) must be below flag --shutdown-grace (10s)"},
		{args: []string{"--shutdown-delay", "30s", "--shutdown-grace", "20s"}, wantErr: "must be below"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.args, func(string) string { return "" })
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%v: %v", tt.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%v: err = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
	if o, _ := Parse(nil, func(string) string { return "" }); o.ShutdownDelay != 0 {
		t.Fatalf("default shutdown delay %v, want 0", o.ShutdownDelay)
	}
}
