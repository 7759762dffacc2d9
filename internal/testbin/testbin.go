// Package testbin keeps a test binary from recursing. Tests that pass the
// test binary itself where a program is expected (os.Args[0] as --deno, a
// host program re-executed for the worker namespace helper) would start
// it again, and it would run every test again, each of them starting it
// again.
package testbin

import (
	"fmt"
	"os"
	"strings"
)

// ExitUnlessTest is called first in a package's TestMain: when the binary
// was started with arguments that are not test flags, it says so on
// stderr and exits with status 3, acting as a program that fails at once.
func ExitUnlessTest() {
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-test.") {
		fmt.Fprintln(os.Stderr, "test binary started with non-test arguments:", strings.Join(os.Args[1:], " "))
		os.Exit(3)
	}
}
