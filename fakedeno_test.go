package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMain keeps the test binary from recursing: several tests pass
// os.Args[0] as --deno, and code that runs `deno info` (the sandbox probe)
// would start this binary, which would run every test again, each of them
// starting it again. Started with arguments that are not test flags, it
// acts as a Deno that fails at once.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-test.") {
		fmt.Fprintln(os.Stderr, "edgeway test binary used as a fake deno:", strings.Join(os.Args[1:], " "))
		os.Exit(3)
	}
	os.Exit(m.Run())
}
