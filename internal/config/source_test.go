package config

import "testing"

// Errors found after Parse name where the value came from.
func TestSourceNamesWhereAValueCameFrom(t *testing.T) {
	for _, c := range []struct {
		args      []string
		env       map[string]string
		name, src string
	}{
		{nil, nil, "host", "flag --host"},
		{[]string{"--host", "::1"}, map[string]string{"EDGEWAY_HOST": "x"}, "host", "flag --host"},
		{nil, map[string]string{"EDGEWAY_HOST": "x"}, "host", "environment EDGEWAY_HOST"},
		{nil, map[string]string{"PORT": "81"}, "port", "environment PORT"},
		{nil, map[string]string{"EDGEWAY_PORT": "82", "PORT": "81"}, "port", "environment EDGEWAY_PORT"},
		{nil, map[string]string{"JWT_SECRET": "s"}, "jwt-secret", "environment JWT_SECRET"},
		{nil, map[string]string{"SUPABASE_JWT_SECRET": "s"}, "jwt-secret", "environment SUPABASE_JWT_SECRET"},
		{[]string{"--jwt-secret", "s"}, map[string]string{"JWT_SECRET": "t"}, "jwt-secret", "flag --jwt-secret"},
		{nil, map[string]string{"EDGEWAY_TRUSTED_PROXIES": "10.0.0.1"}, "trusted-proxies", "environment EDGEWAY_TRUSTED_PROXIES"},
	} {
		o, err := Parse(c.args, env(c.env))
		if err != nil {
			t.Fatal(err)
		}
		if got := o.Source(c.name); got != c.src {
			t.Errorf("%v %v: Source(%s) = %q, want %q", c.args, c.env, c.name, got, c.src)
		}
	}
	if got := Defaults().Source("port"); got != "flag --port" {
		t.Errorf("Defaults().Source = %q", got)
	}
}
