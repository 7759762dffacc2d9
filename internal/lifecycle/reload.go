package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/observe"
)

// Reload applies a rescanned functions folder, make-before-break:
//
//   - a new function becomes routable;
//   - a removed one stops taking requests (404) and drains;
//   - a changed one (its files, shared folders, env files, config) gets a new
//     Manager; when the old one is warm (it has workers running or
//     starting, or requests waiting for one), the new one starts a worker
//     first and takes traffic only once it is ready, then the old one
//     drains. If the new code fails to boot, the old version keeps serving
//     and the failure is logged; the next reload tries again.
//
// An invalid layout (bad function.json, .env, profile) changes nothing.
// Reload returns once every replacement is serving or has failed, or the
// supervisor stopped. Reloads requested while one boots are coalesced: the
// latest layout is applied once the current reload is done, and every
// caller waiting on it is answered then.
func (s *Supervisor) Reload(layout *config.Layout) error {
	p, err := makePlan(s.opts, layout)
	if err != nil {
		s.log.Error().Err(err).Msg("reload refused: the running functions are kept")
		return err
	}
	logArtifact(s.log, layout, "reloading to a verified prebuilt artifact")
	reply := make(chan error, 1)
	select {
	case s.requests <- reloadRequest{plan: p, reply: reply}:
	case <-s.done:
		return nil
	}
	select {
	case err := <-reply:
		return err
	case <-s.done:
		return nil
	}
}

// Requests the loop takes.
type (
	startRequest   struct{ reply chan struct{} }
	supStopRequest struct{ reply chan struct{} }
	reloadRequest  struct {
		plan  *plan
		reply chan error // buffered
	}
)

// reloadRun is one reload in progress: the swaps whose new versions boot.
type reloadRun struct {
	plan    *plan
	waiters []chan error
	next    map[string]*function
	swaps   []swap // warm replacements, booting before they take traffic
}

type swap struct {
	name  string
	old   *function
	spec  *launchSpec
	fresh *function
	err   error // the warm boot's outcome
}

// loop owns the set of functions. It never blocks on a boot: a reload's
// warm boots are awaited by a helper goroutine that reports on s.booted.
func (s *Supervisor) loop() {
	var current, pending *reloadRun
	for {
		var req any
		select {
		case req = <-s.requests:
		case run := <-s.booted:
			req = run
		}
		if stop, ok := req.(supStopRequest); ok {
			s.stop(stop, current, pending)
			return
		}
		ok := observe.Guard(s.log, observe.PanicSupervisor, func() {
			if s.onRequest != nil {
				s.onRequest(req)
			}
			switch r := req.(type) {
			case startRequest:
				s.start()
				close(r.reply)
			case reloadRequest:
				if current != nil { // coalesce: the latest layout wins
					if pending == nil {
						pending = &reloadRun{}
					}
					pending.plan = r.plan
					pending.waiters = append(pending.waiters, r.reply)
					return
				}
				current = s.beginReload(r.plan, []chan error{r.reply})
			case *reloadRun:
				if r != current {
					// Abandoned after a recovered panic: its callers were
					// answered; its new versions never took traffic.
					for _, sw := range r.swaps {
						go sw.fresh.m.stop()
					}
					return
				}
				s.finishReload(r)
				current = nil
			}
			if current == nil && pending != nil {
				current, pending = s.beginReload(pending.plan, pending.waiters), nil
			}
		})
		if !ok {
			// A bug in a reload: answer its callers; the running functions
			// are kept and the next reload starts afresh.
			for _, run := range []*reloadRun{current, pending} {
				if run != nil {
					run.reply(errors.New("reload failed: internal error (logged)"))
				}
			}
			if r, isReload := req.(reloadRequest); isReload {
				select {
				case r.reply <- errors.New("reload failed: internal error (logged)"):
				default:
				}
			}
			if r, isStart := req.(startRequest); isStart {
				select {
				case <-r.reply: // answered before the panic
				default:
					close(r.reply)
				}
			}
			current, pending = nil, nil
		}
	}
}

func (r *reloadRun) reply(err error) {
	for _, w := range r.waiters {
		select {
		case w <- err:
		default: // answered already (after a recovered panic)
		}
	}
	r.waiters = nil
}

func (s *Supervisor) start() {
	if s.started {
		return
	}
	s.started = true
	for _, f := range s.functions.Load().byName {
		go f.m.run()
	}
	s.running.Store(true)
}

// beginReload publishes what changes at once (added and removed functions,
// cold replacements) and starts the warm replacements' boots. It returns
// nil when nothing is left to wait for.
func (s *Supervisor) beginReload(p *plan, waiters []chan error) *reloadRun {
	s.prewarm.update(p.specs)
	run := &reloadRun{plan: p, waiters: waiters}
	old := s.functions.Load().byName
	run.next = make(map[string]*function, len(p.specs))
	var retire []*function
	var switched []string
	for name, spec := range p.specs {
		cur := old[name]
		switch {
		case cur == nil:
			f := s.newFunction(spec)
			run.next[name] = f
			if s.started {
				go f.m.run()
			}
			s.log.Info().Str("function", name).Msg("function added")
		case s.prints[name] == p.prints[name]:
			run.next[name] = cur
		case !s.started:
			run.next[name] = s.newFunction(spec) // cur never ran
		case !isWarm(cur):
			// Nothing to keep warm: switch at once (a request that still
			// reaches the old version is retried on this one).
			f := s.newFunction(spec)
			go f.m.run()
			run.next[name] = f
			retire = append(retire, cur)
			switched = append(switched, name)
		default:
			f := s.newFunction(spec)
			f.m.warmup = true
			go f.m.run()
			run.next[name] = cur // until its replacement is ready
			run.swaps = append(run.swaps, swap{name: name, old: cur, spec: spec, fresh: f})
		}
	}
	for name, f := range old {
		if _, ok := p.specs[name]; !ok {
			s.log.Info().Str("function", name).Msg("function removed; draining")
			retire = append(retire, f)
		}
	}
	s.publishFunctions(run.next)
	for _, name := range switched {
		s.log.Info().Str("function", name).Msg("function reloaded")
	}
	for _, f := range retire {
		s.retire(f)
	}
	if len(run.swaps) == 0 {
		s.layout.Store(p.layout)
		s.prints = p.prints
		run.reply(nil)
		return nil
	}
	go func() {
		for i := range run.swaps {
			run.swaps[i].err = run.swaps[i].fresh.m.waitWarm()
		}
		select {
		case s.booted <- run:
		case <-s.done: // stopped meanwhile: stop abandoned this run
		}
	}()
	return run
}

// isWarm reports whether a version has workers or requests that a cold
// switch would drop or make wait for a new boot: workers running or
// starting, or requests waiting for a worker.
func isWarm(f *function) bool {
	st := f.Status()
	return st.Running > 0 || st.Starting > 0 || f.Pool.Waiting() > 0
}

// finishReload routes every replacement that is ready, keeps the old
// version where the new one failed to boot, and retires the replaced ones.
func (s *Supervisor) finishReload(run *reloadRun) {
	p := run.plan
	for _, sw := range run.swaps {
		if sw.err != nil {
			s.log.Error().Str("function", sw.name).Err(sw.err).Msg("reload failed: the previous version keeps serving")
			go sw.fresh.m.stop()
			p.prints[sw.name] = s.prints[sw.name] // the next reload tries again
			continue
		}
		run.next[sw.name] = sw.fresh
	}
	s.publishFunctions(run.next)
	for _, sw := range run.swaps {
		if sw.err == nil {
			s.log.Info().Str("function", sw.name).Msg("function reloaded")
			s.retire(sw.old)
		}
	}
	s.layout.Store(p.layout)
	s.prints = p.prints
	run.reply(nil)
}

// retire drains a replaced or removed version in the background; Stop
// still stops it.
func (s *Supervisor) retire(f *function) {
	if !s.started {
		return // its Manager never ran: nothing to drain
	}
	live := s.retiring[:0]
	for _, r := range s.retiring {
		select {
		case <-r.m.done:
		default:
			live = append(live, r)
		}
	}
	s.retiring = append(live, f)
	go f.m.retire()
}

// stop answers a Stop: every routable and retiring version is stopped and
// waited for; the new versions of a reload in progress are told to stop
// but not waited for. Callers of abandoned reloads are answered at once.
func (s *Supervisor) stop(req supStopRequest, current, pending *reloadRun) {
	close(s.done)
	var wait []*function
	if s.started { // a manager never started has no goroutine to answer its stop
		for _, f := range s.functions.Load().byName {
			wait = append(wait, f)
		}
		wait = append(wait, s.retiring...)
	}
	for _, run := range []*reloadRun{current, pending} {
		if run == nil {
			continue
		}
		for _, sw := range run.swaps {
			go sw.fresh.m.stop()
		}
		run.reply(nil)
	}
	go func() {
		var wg sync.WaitGroup
		for _, f := range wait {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.m.stop()
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.prewarm.shutdown()
		}()
		wg.Wait()
		os.RemoveAll(s.runDir)
		close(s.stopDone)
		close(req.reply)
	}()
}

// RequestReload asks for a rescan and reload without waiting for it (a
// SIGHUP). Requests made while one waits are coalesced: one goroutine
// serves them all, so a burst of signals starts no goroutine each.
func (s *Supervisor) RequestReload(rescan func() (*config.Layout, error), trigger string) {
	select {
	case s.hups <- rescanRequest{rescan, trigger}:
	default: // one is pending: it rescans after this request anyway
	}
}

type rescanRequest struct {
	rescan  func() (*config.Layout, error)
	trigger string
}

// rescanLoop serves RequestReload until the supervisor stops.
func (s *Supervisor) rescanLoop() {
	for {
		select {
		case r := <-s.hups:
			observe.Guard(s.log, observe.PanicSupervisor, func() { s.ReloadFromDisk(r.rescan, r.trigger) })
		case <-s.done:
			return
		}
	}
}

func (s *Supervisor) publishFunctions(next map[string]*function) {
	m := make(map[string]*function, len(next))
	for k, v := range next {
		m[k] = v
	}
	s.functions.Store(newTable(m))
}

// fingerprint hashes everything a function's workers depend on: its
// folder and the shared folders (symlinks followed), the files its imports
// resolve through (deno.json, import map, lock), the generated import map,
// the folder-level .env, ../config.toml, its resolved config and
// environment.
func fingerprint(layout *config.Layout, fn *config.Function, env functionEnv, importMap []byte) string {
	h := sha256.New()
	var files []string
	for _, dir := range append([]string{fn.Dir}, layout.Shared...) {
		config.WalkFiles(dir, func(real, _ string) { files = append(files, real) })
	}
	files = append(files, fn.Deps.Files()...)
	files = append(files, filepath.Join(layout.Root, ".env"), filepath.Join(filepath.Dir(layout.Root), "config.toml"), fn.Entrypoint)
	sort.Strings(files)
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		h.Write([]byte(path))
		h.Write([]byte{0})
		h.Write(data)
		h.Write([]byte{0})
	}
	h.Write(importMap)
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(env.vars, "\x00")))
	fmt.Fprintf(h, "%+v", fn.Config)
	return hex.EncodeToString(h.Sum(nil))
}
