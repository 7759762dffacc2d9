package config

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseSandboxAndInspect(t *testing.T) {
	none := func(string) string { return "" }
	for _, tc := range []struct {
		name    string
		args    []string
		check   func(o Options) bool
		wantErr string
	}{
		{"defaults", nil, func(o Options) bool {
			return o.FunctionTmp == TmpAuto && o.FunctionNpmRead && slices.Equal(o.FunctionSys, strings.Split(DefaultFunctionSys, ",")) && o.Inspect == ""
		}, ""},
		{"sys narrowed", []string{"--function-sys=hostname,cpus,hostname"}, func(o Options) bool { return slices.Equal(o.FunctionSys, []string{"hostname", "cpus"}) }, ""},
		{"sys none", []string{"--function-sys=none"}, func(o Options) bool { return o.FunctionSys == nil }, ""},
		{"sys identity refused", []string{"--function-sys=uid"}, nil, `unknown or not allowed sys name "uid"`},
		{"sys addresses refused", []string{"--function-sys=hostname,networkInterfaces"}, nil, "networkInterfaces"},
		{"tmp mode", []string{"--function-tmp=shared"}, func(o Options) bool { return o.FunctionTmp == TmpShared }, ""},
		{"tmp bad", []string{"--function-tmp=yes"}, nil, "must be one of"},
		{"inspect alone", []string{"--dev", "--inspect"}, func(o Options) bool {
			return o.Inspect == DefaultInspectAddr && !o.InspectBrk && o.EventLoopTimeout == 0 && o.BootTimeout == 15*time.Second
		}, ""},
		{"inspect addr", []string{"--dev", "--inspect=localhost:9300"}, func(o Options) bool { return o.Inspect == "localhost:9300" }, ""},
		{"inspect-brk lifts boot timeout", []string{"--dev", "--inspect-brk"}, func(o Options) bool {
			return o.Inspect == DefaultInspectAddr && o.InspectBrk && o.BootTimeout == InspectWallClock
		}, ""},
		{"inspect off", []string{"--inspect=false"}, func(o Options) bool { return o.Inspect == "" && o.EventLoopTimeout == 2*time.Second }, ""},
		{"inspect production", []string{"--inspect"}, nil, "refused in production mode"},
		{"inspect not loopback", []string{"--dev", "--inspect=10.0.0.1:9229"}, nil, "not a loopback address"},
		{"inspect forced", []string{"--inspect=0.0.0.0:9229", "--inspect-force"}, func(o Options) bool { return o.Inspect == "0.0.0.0:9229" }, ""},
		{"inspect no port", []string{"--dev", "--inspect=127.0.0.1"}, nil, "want host:port"},
		{"inspect bad port", []string{"--dev", "--inspect=127.0.0.1:70000"}, nil, "port must be 1 to 65535"},
		{"inspect no host", []string{"--dev", "--inspect=:9229"}, nil, "host must be given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := Parse(tc.args, none)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(o) {
				t.Fatalf("options: tmp=%q npm=%v sys=%v inspect=%q brk=%v boot=%v loop=%v", o.FunctionTmp, o.FunctionNpmRead, o.FunctionSys, o.Inspect, o.InspectBrk, o.BootTimeout, o.EventLoopTimeout)
			}
		})
	}
}

func TestInspectRelaxesFunctionLimits(t *testing.T) {
	c := FunctionConfig{Timeout: time.Second, HealthCheckInterval: time.Second, WorkerMaxDuration: time.Minute}
	applyInspect(&c, Options{})
	if c.Timeout != time.Second || c.HealthCheckInterval != time.Second {
		t.Fatalf("changed without --inspect: %+v", c)
	}
	applyInspect(&c, Options{Inspect: DefaultInspectAddr})
	if c.Timeout != InspectWallClock || c.HealthCheckInterval != 0 || c.WorkerMaxDuration != 0 {
		t.Fatalf("not relaxed: %+v", c)
	}
}

// Whatever --inspect and --function-sys are given, Parse never panics, and
// what it accepts is a loopback host:port with a valid port (in --dev,
// without --inspect-force) and only allowed sys names.
func FuzzParseInspectAndSys(f *testing.F) {
	for _, s := range []string{"", "true", "127.0.0.1:9229", "[::1]:1", "localhost:65535", "0.0.0.0:9229", ":9229", "127.0.0.1", "a:b:c", "hostname,cpus", "none", "uid", ",", "hostname,,cpus"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		none := func(string) string { return "" }
		if o, err := Parse([]string{"--dev", "--inspect=" + v}, none); err == nil && o.Inspect != "" {
			host, port, err := net.SplitHostPort(o.Inspect)
			if err != nil {
				t.Fatalf("accepted %q as %q", v, o.Inspect)
			}
			if p, _ := strconv.Atoi(port); p < 1 || p > 65535 {
				t.Fatalf("accepted port %q", port)
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				t.Fatalf("accepted non-loopback %q", o.Inspect)
			}
		}
		if o, err := Parse([]string{"--function-sys=" + v}, none); err == nil {
			for _, name := range o.FunctionSys {
				if !slices.Contains(sysInfoNames, name) {
					t.Fatalf("accepted sys name %q", name)
				}
			}
		}
	})
}
