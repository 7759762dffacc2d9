package server

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

var hookPanics = metrics.GetOrCreateCounter(`edgeway_panics_total{where="` + observe.PanicHook + `"}`)

func TestNewClaims(t *testing.T) {
	for _, c := range []struct {
		name    string
		v       any
		json    string
		subject string
		err     string
	}{
		{"map", map[string]any{"sub": "ann", "role": "admin"}, `{"role":"admin","sub":"ann"}`, "ann", ""},
		{"struct", struct {
			Role string `json:"role"`
		}{"reader"}, `{"role":"reader"}`, "", ""},
		{"non-string sub", map[string]any{"sub": 7}, `{"sub":7}`, "", ""},
		{"not an object", []string{"a"}, "", "", "want a JSON object"},
		{"null", nil, "", "", "want a JSON object"},
		{"unencodable", map[string]any{"f": func() {}}, "", "", "claims: json"},
		{"too large", map[string]any{"x": strings.Repeat("a", MaxClaimsBytes)}, "", "", "at most"},
	} {
		got, err := NewClaims(c.v)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b64, _ := base64.RawURLEncoding.DecodeString(string(got.res.ClaimsB64))
		if string(got.JSON()) != c.json || string(b64) != c.json || got.Subject() != c.subject {
			t.Errorf("%s: json %s, x-auth-claims %s, subject %q", c.name, got.JSON(), b64, got.Subject())
		}
	}
}

// fixedAuth accepts the key "k" as ann and panics on "boom".
type fixedAuth struct{ ann *Claims }

func (a fixedAuth) Credentials(ctx *fasthttp.RequestCtx) []byte {
	if string(ctx.Request.Header.Peek("x-key")) == "panic" {
		panic("credentials bug")
	}
	return ctx.Request.Header.Peek("x-key")
}

func (a fixedAuth) Verify(cred []byte, _ time.Time) (*Claims, error) {
	switch string(cred) {
	case "k":
		return a.ann, nil
	case "anonymous":
		return nil, nil
	case "boom":
		panic("verify bug")
	}
	return nil, errors.New("unknown key")
}

// The adapter forwards claims, turns a panic into a refusal (counted), and
// allocates nothing for a fixed set of principals.
func TestAuthenticatorAdapter(t *testing.T) {
	ann, _ := NewClaims(map[string]any{"sub": "ann"})
	x := authAdapter{a: fixedAuth{ann}, log: zerolog.Nop()}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set("x-key", "k")
	res, err := x.Verify(x.Credentials(&ctx), time.Now())
	if err != nil || string(res.Sub) != "ann" || string(res.ClaimsB64) != string(ann.res.ClaimsB64) {
		t.Fatalf("k: %+v %v", res, err)
	}
	if res, err := x.Verify([]byte("anonymous"), time.Now()); err != nil || len(res.ClaimsB64) != 0 {
		t.Fatalf("nil claims: %+v %v", res, err)
	}
	if _, err := x.Verify([]byte("nope"), time.Now()); err == nil || err.Error() != "unknown key" {
		t.Fatalf("refusal: %v", err)
	}
	before := hookPanics.Get()
	if _, err := x.Verify([]byte("boom"), time.Now()); err != ErrAuthenticatorPanicked {
		t.Fatalf("panicking Verify: %v", err)
	}
	ctx.Request.Header.Set("x-key", "panic")
	if cred := x.Credentials(&ctx); cred != nil {
		t.Fatalf("panicking Credentials: %q", cred)
	}
	if hookPanics.Get() != before+2 {
		t.Fatalf("panics counted %d -> %d, want +2", before, hookPanics.Get())
	}
	ctx.Request.Header.Set("x-key", "k")
	if a := testing.AllocsPerRun(100, func() { x.Verify(x.Credentials(&ctx), time.Now()) }); a != 0 {
		t.Fatalf("adapter allocates %.1f times", a)
	}
}

// The hook goroutine survives a panicking hook, runs hooks in order, and
// runs what is queued at stop.
func TestDispatcherContainsPanics(t *testing.T) {
	d := newDispatcher(zerolog.Nop())
	before := hookPanics.Get()
	var got []int
	d.post(func() { got = append(got, 1) })
	d.post(func() { panic("hook bug") })
	d.post(func() { got = append(got, 2) })
	d.stop(time.Minute)
	if !slices.Equal(got, []int{1, 2}) || hookPanics.Get() != before+1 {
		t.Fatalf("ran %v, panics %d -> %d", got, before, hookPanics.Get())
	}
}

// A full queue drops (and counts) events instead of blocking the caller.
func TestDispatcherDropsWhenFull(t *testing.T) {
	d := newDispatcher(zerolog.Nop())
	release := make(chan struct{})
	d.post(func() { <-release })
	before := droppedHookEvents.Get()
	for range hookQueue + 10 {
		d.post(func() {})
	}
	if droppedHookEvents.Get() < before+10 {
		t.Fatalf("dropped %d -> %d", before, droppedHookEvents.Get())
	}
	close(release)
	d.stop(time.Minute)
}

func TestConfigArgs(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"zero", Config{}, nil},
		{"fields win over flags", Config{Flags: []string{"--port=1", "--max-workers", "3"}, Port: 8080, FunctionsDir: "fns", Dev: true, Auth: "none"},
			[]string{"--port=1", "--max-workers", "3", "--functions=fns", "--port=8080", "--dev", "--auth=none"}},
		{"authenticator replaces --auth", Config{Auth: "jwt", Authenticator: fixedAuth{}}, []string{"--auth=none"}},
	} {
		if got := c.cfg.args(); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		err string
	}{
		{Config{Flags: []string{"--no-such-flag"}}, "no-such-flag"},
		{Config{Flags: []string{"--max-workers=lots"}}, "--max-workers"},
		{Config{Deno: "no-such-deno-here", Auth: "none"}, "flag --deno"},
		{Config{}, "flag --auth: no JWT key configured"},
		{Config{Getenv: func(k string) string {
			if k == "EDGEWAY_MAX_WORKERS" {
				return "-3"
			}
			return ""
		}}, "EDGEWAY_MAX_WORKERS"},
	} {
		c.cfg.LogOutput = &strings.Builder{}
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%+v: %v, want %q", c.cfg.Flags, err, c.err)
		}
	}
}
