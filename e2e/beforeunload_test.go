package e2e

import (
	"strconv"
	"syscall"
	"testing"
)

// savesStateOnUnload is the pattern of Supabase's examples: a
// beforeunload listener that records why the worker is going away.
const savesStateOnUnload = `addEventListener("beforeunload", (ev) => {
  console.log("beforeunload " + ev.detail.reason + " cancelable=" + ev.cancelable + " pid=" + Deno.pid);
});
Deno.serve(() => Response.json({ pid: Deno.pid }));
`

func TestBeforeUnloadFiresWithItsReason(t *testing.T) {
	cases := []struct {
		name, config, reason string
		stop                 func(g *Gateway)
	}{
		{"idle stop", `{"idleTimeout": 300}`, "idle", func(*Gateway) {}},
		{"recycle at max duration", `{"workerMaxDuration": 700}`, "wall_clock", func(*Gateway) {}},
		{"reload", `{}`, "termination", func(g *Gateway) {
			write(t, g, "saver/index.ts", savesStateOnUnload+"// edited\n")
			g.Signal(syscall.SIGHUP)
		}},
		{"shutdown", `{}`, "termination", func(g *Gateway) { g.Signal(syscall.SIGTERM) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := startGateway(t, map[string]string{
				"saver/index.ts":      savesStateOnUnload,
				"saver/function.json": c.config,
			})
			pid := pidOf(t, g.Get("/saver"))
			c.stop(g)
			want := "beforeunload " + c.reason + " cancelable=true pid=" + strconv.Itoa(pid)
			g.WaitLog(func(l logLine) bool { return l.Msg() == want })
		})
	}
}
