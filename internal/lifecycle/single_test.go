package lifecycle

import (
	"slices"
	"strings"
	"testing"
)

func TestSingleEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		host    []string
		want    []string
		wantErr string
	}{
		{
			name: "only the given variables and Deno's own from the host",
			vars: map[string]string{"GREETING": "hi"},
			host: []string{"HOME=/home/u", "SECRET=x", "NPM_CONFIG_REGISTRY=https://npm.example", "DENO_DIR=/cache/deno", "PATH=/bin"},
			want: []string{"DENO_DIR=/cache/deno", "GREETING=hi", "NPM_CONFIG_REGISTRY=https://npm.example"},
		},
		{
			name: "DENO_DIR from XDG_CACHE_HOME",
			host: []string{"HOME=/home/u", "XDG_CACHE_HOME=/xdg"},
			want: []string{"DENO_DIR=/xdg/deno"},
		},
		{
			name: "DENO_DIR from HOME",
			host: []string{"HOME=/home/u"},
			want: []string{"DENO_DIR=/home/u/.cache/deno"},
		},
		{
			name: "the caller may set DENO_DIR",
			vars: map[string]string{"DENO_DIR": "/mine"},
			host: []string{"DENO_DIR=/cache/deno"},
			want: []string{"DENO_DIR=/mine"},
		},
		{name: "no HOME, no DENO_DIR", want: []string{}},
		{name: "bootstrap variable", vars: map[string]string{"DENO_SERVE_ADDRESS": "tcp:1"}, wantErr: "set by edgeway"},
		{name: "auto serve", vars: map[string]string{"DENO_AUTO_SERVE": "0"}, wantErr: "set by edgeway"},
		{name: "edgeway prefix", vars: map[string]string{"EDGEWAY_CONTROL": "/x"}, wantErr: "set by edgeway"},
		{name: "empty name", vars: map[string]string{"": "x"}, wantErr: "non-empty"},
		{name: "= in name", vars: map[string]string{"A=B": "x"}, wantErr: "non-empty"},
		{name: "NUL in value", vars: map[string]string{"A": "x\x00y"}, wantErr: "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SingleEnv(tc.vars, tc.host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestLineLoggerDeliversLinesAndSurvivesPanics(t *testing.T) {
	var got []string
	onLog := func(stream, line string) {
		if line == "boom" {
			panic("handler bug")
		}
		got = append(got, stream+":"+line)
	}
	lw := &lineWriter{log: lineLogger(onLog, "stderr"), maxLine: 100}
	lw.Write([]byte("first\nboom\nError: x\n    at f (file:1:2)\nlast\n"))
	lw.Flush()
	want := []string{"stderr:first", "stderr:Error: x\n    at f (file:1:2)", "stderr:last"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// No handler: lines are dropped.
	lw = &lineWriter{log: lineLogger(nil, "stdout"), maxLine: 100}
	lw.Write([]byte("dropped\n"))
}
