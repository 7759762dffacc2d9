package server

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"edgeway.dev/edgeway/internal/lifecycle"
)

// A host program started as the worker namespace helper runs the helper,
// never its own main (here: the tests): a bad helper command line fails
// with the helper's own exit code and message.
func TestHostProgramRunsTheWorkerHelper(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, os.Args[0], lifecycle.NamespaceHelperCommand, "not-a-namespace").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 111 || !strings.HasPrefix(string(out), "edgeway: private /tmp for the worker:") {
		t.Fatalf("helper run: %v, output %q", err, out)
	}
}
