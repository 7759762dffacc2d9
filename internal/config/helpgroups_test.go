package config

import (
	"bytes"
	"strings"
	"testing"
)

// Every help group starts at a flag that exists, in spec order, and the
// help prints each title once before its first flag.
func TestHelpGroups(t *testing.T) {
	pos := map[string]int{}
	for i, s := range specs {
		pos[s.name] = i
	}
	last := -1
	for _, g := range helpGroups {
		i, ok := pos[g.first]
		if !ok {
			t.Fatalf("help group %q starts at --%s, which is not a flag", g.title, g.first)
		}
		if i <= last {
			t.Fatalf("help group %q is out of the flags' order", g.title)
		}
		last = i
	}
	if helpGroups[0].first != specs[0].name {
		t.Fatalf("the first flag, --%s, has no group", specs[0].name)
	}
	var b bytes.Buffer
	PrintHelp(&b)
	out := b.String()
	for _, g := range helpGroups {
		head := "\n " + g.title + ":\n  --" + g.first + " "
		if strings.Count(out, "\n "+g.title+":\n") != 1 || !strings.Contains(out, head) {
			t.Errorf("help lacks %q before --%s", g.title, g.first)
		}
	}
}
