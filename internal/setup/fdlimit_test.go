package setup

import (
	"testing"

	"edgeway.dev/edgeway/internal/config"
)

// The descriptor estimate counts the prewarm pool's waiting workers
// (--prewarm-pool for each of --prewarm-classes), which hold pipes and a
// control socket in the gateway like any worker; --inspect turns the pool
// off.
func TestFDNeedCountsThePrewarmPool(t *testing.T) {
	layout := &config.Layout{Functions: []config.Function{{Config: config.FunctionConfig{MaxWorkers: 3}}}}
	opts := config.Defaults()
	opts.PrewarmPool = 0
	base, workers, pooled := fdNeed(opts, layout)
	if workers != 3 || pooled != 0 {
		t.Fatalf("workers %d, pooled %d; want 3, 0", workers, pooled)
	}
	for _, tc := range []struct {
		pool, classes int
		inspect       string
		want          int
	}{
		{2, 2, "", 4},
		{3, 1, "", 3},
		{2, 2, "127.0.0.1:9229", 0},
	} {
		opts.PrewarmPool, opts.PrewarmClasses, opts.Inspect = tc.pool, tc.classes, tc.inspect
		need, _, pooled := fdNeed(opts, layout)
		if pooled != tc.want || need != base+tc.want*fdsPerPooledWorker {
			t.Errorf("pool %d x %d classes (inspect %q): pooled %d, need %d; want %d, %d",
				tc.pool, tc.classes, tc.inspect, pooled, need, tc.want, base+tc.want*fdsPerPooledWorker)
		}
	}
}
