package lifecycle

import (
	"slices"
	"testing"
)

func TestWorkerGrants(t *testing.T) {
	const env = "--allow-env=EDGEWAY_CONTROL,DENO_SERVE_ADDRESS,DENO_AUTO_SERVE,EDGEWAY_NODE_SERVER,EDGEWAY_CONSOLE,EDGEWAY_POOL"
	const deny = "--deny-net=0.0.0.0,[::]"
	cases := []struct {
		name string
		in   []string
		want []string
	}{
		{"default profile", []string{"--no-prompt", "--allow-net", "--allow-env"}, []string{"--no-prompt", "--allow-net", "--allow-env", deny}},
		{"no env", []string{"--no-prompt", "--allow-net"}, []string{"--no-prompt", "--allow-net", env, deny}},
		{"scoped env", []string{"--allow-env=DB_URL"}, []string{"--allow-env=DB_URL,EDGEWAY_CONTROL,DENO_SERVE_ADDRESS,DENO_AUTO_SERVE,EDGEWAY_NODE_SERVER,EDGEWAY_CONSOLE,EDGEWAY_POOL", deny}},
		{"scoped env naming one", []string{"--allow-env=DENO_AUTO_SERVE,A"}, []string{"--allow-env=DENO_AUTO_SERVE,A,EDGEWAY_CONTROL,DENO_SERVE_ADDRESS,EDGEWAY_NODE_SERVER,EDGEWAY_CONSOLE,EDGEWAY_POOL", deny}},
		{"own deny list", []string{"--allow-env", "--deny-net=10.0.0.1"}, []string{"--allow-env", "--deny-net=10.0.0.1,0.0.0.0,[::]"}},
		{"deny all net", []string{"--allow-env", "--deny-net"}, []string{"--allow-env", "--deny-net"}},
		{"allow all", []string{"--no-prompt", "--allow-all"}, []string{"--no-prompt", "--allow-all", deny}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(c.in)
			if got := workerGrants(c.in); !slices.Equal(got, c.want) {
				t.Errorf("workerGrants(%q) = %q, want %q", c.in, got, c.want)
			}
			if !slices.Equal(in, c.in) {
				t.Errorf("input changed to %q", c.in)
			}
		})
	}
}

func TestWorkerEnvDoesNotShareTheFunctionsSlice(t *testing.T) {
	vars := make([]string, 1, 16)
	vars[0] = "A=1"
	a := workerEnv(vars, "/run/w1.sock", "/run/c1.sock", false)
	b := workerEnv(vars, "/run/w2.sock", "/run/c2.sock", true)
	want := []string{"A=1", "EDGEWAY_CONTROL=/run/c1.sock", "DENO_SERVE_ADDRESS=unix:/run/w1.sock", "DENO_AUTO_SERVE=1"}
	if !slices.Equal(a, want) {
		t.Errorf("first worker's env = %q, want %q", a, want)
	}
	if a[2] == b[2] {
		t.Errorf("two workers share %q", a[2])
	}
	if b[len(b)-1] != "EDGEWAY_NODE_SERVER=1" {
		t.Errorf("a worker that may serve node:http has env %q, want EDGEWAY_NODE_SERVER=1 last", b)
	}
}
