package gateway

import (
	"testing"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

func adminGateway(pprof bool, adminListen string) *Gateway {
	opts := config.Defaults()
	opts.InternalKey = "test-key"
	opts.Pprof = pprof
	opts.AdminListen = adminListen
	return New(opts, fakeFunctions{}, Security{}, zerolog.Nop())
}

func adminGet(h fasthttp.RequestHandler, uri string) int {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.Set("Authorization", "Bearer test-key")
	h(&ctx)
	return ctx.Response.StatusCode()
}

// pprof is opt-in, served on the admin listener only, and never serves
// cmdline (the gateway's argv, --jwt-secret included), however spelled.
func TestPprofOnlyOnTheAdminListenerAndNeverCmdline(t *testing.T) {
	on := adminGateway(true, "127.0.0.1:0")
	for _, tc := range []struct {
		uri  string
		want int
	}{
		{"/debug/pprof/heap", 200},
		{"/debug/pprof/goroutine?debug=1", 200},
		{"/debug/pprof/cmdline", 404},
		{"/debug/pprof/%63mdline", 404},
		{"/debug/pprof/./cmdline", 404},
		{"/debug/pprof//cmdline", 404},
		{"/debug/pprof/heap/../cmdline", 404},
		{"/debug/pprof/CMDLINE", 404},
		{"/debug/pprof/cmdline/", 404},
		{"/debug/pprof/nothing", 404},
	} {
		if got := adminGet(on.admin.Handler, tc.uri); got != tc.want {
			t.Errorf("admin listener, --pprof: GET %s = %d, want %d", tc.uri, got, tc.want)
		}
	}
	// The main listener never routes /debug/pprof/ to the admin router.
	if on.isAdminPath([]byte("/debug/pprof/heap")) {
		t.Error("the main listener serves pprof")
	}
	// Without --pprof the admin listener has no such route.
	off := adminGateway(false, "127.0.0.1:0")
	if got := adminGet(off.admin.Handler, "/debug/pprof/heap"); got != 404 {
		t.Errorf("admin listener without --pprof: GET /debug/pprof/heap = %d, want 404", got)
	}
	// Nor does a gateway without an admin listener, on any path.
	main := adminGateway(false, "")
	if main.isAdminPath([]byte("/debug/pprof/heap")) {
		t.Error("pprof reachable on the main listener without --admin-listen")
	}
}

func TestPprofNeedsTheInternalKey(t *testing.T) {
	g := adminGateway(true, "127.0.0.1:0")
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/debug/pprof/heap")
	g.admin.Handler(&ctx)
	if ctx.Response.StatusCode() != 403 {
		t.Fatalf("without the key: %d, want 403", ctx.Response.StatusCode())
	}
}

func TestPprofFlagNeedsAdminListen(t *testing.T) {
	_, err := config.Parse([]string{"--pprof"}, func(string) string { return "" })
	if err == nil {
		t.Fatal("--pprof without --admin-listen was accepted")
	}
}
