package lifecycle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"edgeway/config"
)

// Reload applies a rescanned functions folder, make-before-break:
//
//   - a new function becomes routable;
//   - a removed one stops taking requests (404) and drains;
//   - a changed one (its files, shared folders, env files, config) gets a new
//     Manager; when the old one had workers, the new one starts a worker
//     first and takes traffic only once it is ready, then the old one
//     drains. If the new code fails to boot, the old version keeps serving
//     and the failure is logged; the next reload tries again.
//
// An invalid layout (bad function.json, .env, profile) changes nothing.
// Reload returns once every replacement is serving or has failed.
func (s *Supervisor) Reload(layout *config.Layout) error {
	p, err := makePlan(s.opts, layout)
	if err != nil {
		s.log.Error().Err(err).Msg("reload refused: the running functions are kept")
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	old := *s.functions.Load()
	next := make(map[string]*Function, len(p.specs))
	var swaps []swap
	for name, spec := range p.specs {
		cur := old[name]
		switch {
		case cur == nil:
			f := s.newFunction(spec)
			next[name] = f
			if s.started {
				go f.m.run()
			}
			s.log.Info().Str("function", name).Msg("function added")
		case s.prints[name] != p.prints[name]:
			next[name] = cur // until its replacement is ready
			swaps = append(swaps, swap{name: name, old: cur, spec: spec})
		default:
			next[name] = cur
		}
	}
	var removed []*Function
	for name, f := range old {
		if _, ok := p.specs[name]; !ok {
			removed = append(removed, f)
			s.log.Info().Str("function", name).Msg("function removed; draining")
		}
	}
	s.publishFunctions(next)
	for _, f := range removed {
		go f.m.retire()
	}
	var wg sync.WaitGroup
	for i := range swaps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			swaps[i].fresh = s.replace(swaps[i])
		}()
	}
	wg.Wait()
	for _, sw := range swaps {
		if sw.fresh != nil {
			next[sw.name] = sw.fresh
		} else {
			p.prints[sw.name] = s.prints[sw.name] // the next reload tries again
		}
	}
	s.publishFunctions(next)
	for _, sw := range swaps {
		if sw.fresh != nil {
			s.log.Info().Str("function", sw.name).Msg("function reloaded")
			go sw.old.m.retire()
		}
	}
	s.layout, s.prints = layout, p.prints
	return nil
}

type swap struct {
	name  string
	old   *Function
	spec  *launchSpec
	fresh *Function
}

// replace starts the new version of a function. When the old one is warm,
// the new one must boot a worker before it is returned; nil means it
// failed and the old version keeps serving.
func (s *Supervisor) replace(sw swap) *Function {
	f := s.newFunction(sw.spec)
	warm := sw.old.Status().Running > 0
	if !warm || !s.started {
		if s.started {
			go f.m.run()
		}
		return f
	}
	f.m.warmup = true
	go f.m.run()
	if err := f.m.waitWarm(); err != nil {
		s.log.Error().Str("function", sw.name).Err(err).Msg("reload failed: the previous version keeps serving")
		f.m.stop()
		return nil
	}
	return f
}

func (s *Supervisor) publishFunctions(next map[string]*Function) {
	m := make(map[string]*Function, len(next))
	for k, v := range next {
		m[k] = v
	}
	s.functions.Store(&m)
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
