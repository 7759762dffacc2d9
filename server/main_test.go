package server

import (
	"os"
	"testing"

	"edgeway.dev/edgeway/internal/testbin"
)

// TestMain keeps the test binary from recursing when a test starts it as
// something else (TestHostProgramRunsTheWorkerHelper, a --deno pointing
// at it).
func TestMain(m *testing.M) {
	testbin.ExitUnlessTest()
	os.Exit(m.Run())
}
