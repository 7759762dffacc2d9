package server

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMain keeps the test binary from recursing when a test starts it as
// something else (TestHostProgramRunsTheWorkerHelper, a --deno pointing
// at it): with arguments that are not test flags it fails at once.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-test.") {
		fmt.Fprintln(os.Stderr, "server test binary started with non-test arguments:", strings.Join(os.Args[1:], " "))
		os.Exit(3)
	}
	os.Exit(m.Run())
}
