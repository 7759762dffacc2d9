package setup

import (
	"fmt"
	"syscall"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rs/zerolog"
)

// CheckFDLimit raises the soft file descriptor limit to the hard one and
// warns when the limits configured may not fit in it: running out does not
// stop the gateway (accept sheds and retries), but connections are refused
// and workers fail to start meanwhile.
func CheckFDLimit(opts config.Options, layout *config.Layout, log zerolog.Logger) {
	limit, err := raiseFDLimit()
	if err != nil {
		log.Warn().Err(err).Msg("cannot raise the file descriptor limit")
	}
	need, workers, pooled := fdNeed(opts, layout)
	if limit > 0 && uint64(need) > limit {
		log.Warn().Uint64("limit", limit).Int("need", need).Int("max_client_conns", opts.MaxClientConns).
			Int("max_workers_total", workers).Int("prewarm_workers", pooled).Int("max_websockets", opts.MaxWebSockets).
			Msg("the file descriptor limit (ulimit -n) may not fit --max-client-conns plus the workers' sockets: raise it or lower the limits")
	}
}

// fdBaseline covers the descriptors the gateway holds whatever the load:
// listeners, the runtime folder, epoll, log pipes, the watcher.
const fdBaseline = 64

// fdsPerWorker estimates a worker's descriptors in the gateway beyond
// requests in flight: its stdout and stderr pipes, control socket, process
// handle and spare, plus the idle and pipelined connections kept open.
func fdsPerWorker(opts config.Options) int {
	return 5 + opts.UpstreamMaxIdleConns + opts.PipelineConns
}

// fdsPerPooledWorker is a pre-booted worker's descriptors in the gateway
// while it waits: its stdout and stderr pipes, control socket, process
// handle and spare (no upstream connection yet).
const fdsPerPooledWorker = 5

// raiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit (the most
// an unprivileged process may use) and returns the limit now in force.
func raiseFDLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	if rl.Cur < rl.Max {
		want := rl
		want.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return rl.Cur, fmt.Errorf("raise RLIMIT_NOFILE from %d to %d: %w", rl.Cur, rl.Max, err)
		}
		rl = want
	}
	return rl.Cur, nil
}

// fdNeed estimates the descriptors the gateway uses at its limits: every
// client connection (--max-client-conns), every worker of every function
// at maxWorkers with its kept connections, and the worker side of every
// WebSocket (--max-websockets), plus the prewarm pool's waiting workers
// (--prewarm-pool for each of --prewarm-classes).
func fdNeed(opts config.Options, layout *config.Layout) (need, workers, pooled int) {
	for _, fn := range layout.Functions {
		workers += fn.Config.MaxWorkers
	}
	if opts.Inspect == "" { // --inspect turns the pool off
		pooled = opts.PrewarmPool * opts.PrewarmClasses
	}
	need = fdBaseline + opts.MaxClientConns + workers*fdsPerWorker(opts) + pooled*fdsPerPooledWorker + opts.MaxWebSockets
	return need, workers, pooled
}
