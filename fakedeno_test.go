package main

import (
	"os"
	"testing"

	"edgeway.dev/edgeway/internal/testbin"
)

// TestMain keeps the test binary from recursing: several tests pass
// os.Args[0] as --deno, and code that runs `deno info` (the sandbox probe)
// would start this binary, which would run every test again.
func TestMain(m *testing.M) {
	testbin.ExitUnlessTest()
	os.Exit(m.Run())
}
