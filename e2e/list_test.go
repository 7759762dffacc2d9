package e2e

import (
	"os/exec"
	"regexp"
	"testing"
)

// `edgeway list --from` shows the folder's functions with a running
// gateway's live state; without the internal key it refuses.
func TestListShowsLiveState(t *testing.T) {
	g := startGateway(t, map[string]string{
		"warm/index.ts":      `Deno.serve(() => new Response("w"));`,
		"warm/function.json": `{"minWorkers": 1, "maxWorkers": 2, "auth": false}`,
		"cold/index.ts":      `Deno.serve(() => new Response("c"));`,
	}, "--internal-key", internalKey)
	if r := g.Get("/functions/v1/warm"); r.Status != 200 {
		t.Fatalf("warm: %d %s", r.Status, r.Body)
	}
	out, err := exec.Command(binPath(t), "list", "--functions", g.Dir, "--from", g.URL, "--internal-key", internalKey).CombinedOutput()
	if err != nil {
		t.Fatalf("edgeway list: %v\n%s", err, out)
	}
	for _, re := range []string{
		`(?m)^FUNCTION +ROUTE +AUTH +PERMISSIONS +POOL +WORKERS +RESTARTS +BREAKER +P95$`,
		`(?m)^warm +/functions/v1/warm, /warm +public +standard +1-2 +1 running +0 +closed +[0-9.]+ms$`,
		`(?m)^cold +/functions/v1/cold, /cold +jwt +standard +0-1 +0 running +0 +closed +-$`,
	} {
		if !regexp.MustCompile(re).Match(out) {
			t.Errorf("edgeway list output lacks %s:\n%s", re, out)
		}
	}
	out, err = exec.Command(binPath(t), "list", "--functions", g.Dir, "--from", g.URL).CombinedOutput()
	if err == nil || !regexp.MustCompile(`needs --internal-key`).Match(out) {
		t.Fatalf("edgeway list --from without the key: %v\n%s", err, out)
	}
}
