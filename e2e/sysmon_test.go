package e2e

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// `edgeway serve` re-executes itself, same pid, with GODEBUG's schedtrace
// set so Go's sysmon never parks (--go-sysmon-awake, default on), keeps an
// operator's GODEBUG, and leaves it alone when told not to or when
// GODEBUG already sets schedtrace. The environment a process was started
// with is in /proc/<pid>/environ.
func TestServeKeepsSysmonAwake(t *testing.T) {
	cases := []struct {
		name    string
		godebug string // the operator's GODEBUG, "" for none
		args    []string
		want    string // the GODEBUG entry expected after start, "" for none
	}{
		{"default", "", nil, "GODEBUG=schedtrace=2147483647"},
		{"kept with the operator's", "madvdontneed=1", nil, "GODEBUG=madvdontneed=1,schedtrace=2147483647"},
		{"the operator's schedtrace wins", "schedtrace=5000000", nil, "GODEBUG=schedtrace=5000000"},
		{"off", "", []string{"--go-sysmon-awake=false"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GODEBUG", tc.godebug) // restored after the test
			if tc.godebug == "" {
				os.Unsetenv("GODEBUG")
			}
			g := startGateway(t, map[string]string{"hello/index.ts": hitFn}, tc.args...)
			if r := g.Do("GET", "/hello", nil, nil); r.Status != 200 {
				t.Fatalf("status %d", r.Status)
			}
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", g.cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			var got string
			for _, kv := range bytes.Split(env, []byte{0}) {
				if bytes.HasPrefix(kv, []byte("GODEBUG=")) {
					got = string(kv)
				}
			}
			if got != tc.want {
				t.Fatalf("environment has %q, want %q", got, tc.want)
			}
		})
	}
}
