package main

import (
	"slices"
	"testing"
)

func TestCutFlag(t *testing.T) {
	for _, c := range []struct {
		args      []string
		value     string
		rest      []string
		wantError bool
	}{
		{[]string{"--functions", "f", "--from", "http://x"}, "http://x", []string{"--functions", "f"}, false},
		{[]string{"--from=http://y", "--dev"}, "http://y", []string{"--dev"}, false},
		{[]string{"-from", "z"}, "z", nil, false},
		{[]string{"--fromage", "1"}, "", []string{"--fromage", "1"}, false},
		{[]string{"--from"}, "", nil, true},
	} {
		v, rest, err := cutFlag(c.args, "from")
		if (err != nil) != c.wantError || v != c.value || !slices.Equal(rest, c.rest) {
			t.Errorf("%v: %q %q %v", c.args, v, rest, err)
		}
	}
}
