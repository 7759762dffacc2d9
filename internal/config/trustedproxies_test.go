package config

import (
	"slices"
	"testing"
)

// --trusted-proxies defaults to loopback (nginx on the same machine); given
// values, as flags or in the environment, replace the default.
func TestTrustedProxiesDefaultIsReplaced(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"default", nil, nil, []string{"127.0.0.0/8,::1"}},
		{"flag replaces", []string{"--trusted-proxies", "10.0.0.1"}, nil, []string{"10.0.0.1"}},
		{"repeated flags", []string{"--trusted-proxies", "10.0.0.1", "--trusted-proxies=::1"}, nil, []string{"10.0.0.1", "::1"}},
		{"environment replaces", nil, map[string]string{"EDGEWAY_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1"}, []string{"10.0.0.0/8", "192.168.1.1"}},
		{"flag beats environment", []string{"--trusted-proxies", "none"}, map[string]string{"EDGEWAY_TRUSTED_PROXIES": "10.0.0.1"}, []string{"none"}},
		{"empty flag trusts nobody", []string{"--trusted-proxies="}, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := Parse(c.args, env(c.env))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(o.TrustedProxies, c.want) {
				t.Fatalf("TrustedProxies %q, want %q", o.TrustedProxies, c.want)
			}
		})
	}
	// Other list flags keep starting empty.
	if o, _ := Parse([]string{"--public-functions", "a"}, env(nil)); !slices.Equal(o.PublicFunctions, []string{"a"}) {
		t.Fatalf("public functions %q", o.PublicFunctions)
	}
}
