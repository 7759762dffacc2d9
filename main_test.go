package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"edgeway.dev/edgeway/internal/config"
)

// The README's configuration table is generated from the flag table; this
// keeps it from drifting when an option is added or changed.
func TestReadmeConfigTableIsCurrent(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- config-table:begin -->\n", "<!-- config-table:end -->"
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README has no config-table markers")
	}
	var want bytes.Buffer
	config.PrintMarkdown(&want)
	if got := s[i+len(begin) : j]; got != want.String() {
		t.Fatalf("README configuration table is stale; regenerate with `edgeway help --markdown`:\n%s", want.String())
	}
}

func TestRunCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "edgeway ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "--functions") {
		t.Fatalf("help: %d", code)
	}
	if code := run([]string{"bogus"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
}
