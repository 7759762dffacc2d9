package lifecycle

import (
	"path/filepath"
	"sort"
	"strings"

	"edgeway.dev/edgeway/internal/config"

	"github.com/rjeczalik/notify"
	"github.com/rs/zerolog"
)

// outsideTarget is a place outside the functions folder that functions
// depend on: the target of a symlinked function or `_*` folder (notify does
// not follow symlinks), a function folder config.toml put elsewhere, or
// the folder of a config, import map or lock file kept elsewhere.
type outsideTarget struct {
	dir   string          // with every symlink resolved, as notify reports paths
	files map[string]bool // nil: the whole tree matters; else only these names in dir
}

// key tells targets apart; a changed file set is a different target.
func (t outsideTarget) key() string {
	if t.files == nil {
		return t.dir + "/..."
	}
	names := make([]string, 0, len(t.files))
	for n := range t.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return t.dir + ":" + strings.Join(names, ",")
}

// outsideTargets lists what layout depends on outside its functions folder.
func outsideTargets(layout *config.Layout) map[string]outsideTarget {
	root := config.Resolved(layout.Root)
	var trees []string
	covered := func(p string) bool {
		if within(p, root) {
			return true
		}
		for _, t := range trees {
			if within(p, t) {
				return true
			}
		}
		return false
	}
	dirs := append([]string{}, layout.Shared...)
	for _, fn := range layout.Functions {
		dirs = append(dirs, fn.Dir)
	}
	for _, d := range dirs {
		if r := config.Resolved(d); !covered(r) {
			trees = append(trees, r)
		}
	}
	out := map[string]outsideTarget{}
	for _, t := range trees {
		ot := outsideTarget{dir: t}
		out[ot.key()] = ot
	}
	files := map[string]map[string]bool{}
	for _, fn := range layout.Functions {
		for _, f := range fn.Deps.Files() {
			r := config.Resolved(f)
			if covered(r) {
				continue
			}
			dir := filepath.Dir(r)
			if files[dir] == nil {
				files[dir] = map[string]bool{}
			}
			files[dir][filepath.Base(r)] = true
		}
	}
	addArtifactSource(layout, files)
	for dir, names := range files {
		ot := outsideTarget{dir: dir, files: names}
		out[ot.key()] = ot
	}
	return out
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+string(filepath.Separator))
}

// outsideWatches keeps one notify watch per outside target, each on a
// channel of its own so it can be dropped when no function needs it.
type outsideWatches struct {
	hints   chan struct{} // a relevant change happened (capacity 1: a hint, not a count)
	log     zerolog.Logger
	current map[string]*outsideWatch
}

type outsideWatch struct {
	target outsideTarget
	events chan notify.EventInfo
	done   chan struct{}
}

func newOutsideWatches(log zerolog.Logger) *outsideWatches {
	return &outsideWatches{hints: make(chan struct{}, 1), log: log, current: map[string]*outsideWatch{}}
}

// sync watches exactly the targets of layout. A target that cannot be
// watched is logged and left out: SIGHUP still reloads it.
func (o *outsideWatches) sync(layout *config.Layout) {
	want := outsideTargets(layout)
	for key, w := range o.current {
		if _, ok := want[key]; !ok {
			w.stop()
			delete(o.current, key)
		}
	}
	for key, t := range want {
		if _, ok := o.current[key]; ok {
			continue
		}
		w := &outsideWatch{target: t, events: make(chan notify.EventInfo, watchBuffer), done: make(chan struct{})}
		path := t.dir
		if t.files == nil {
			path = filepath.Join(t.dir, "...")
		}
		if err := notify.Watch(path, w.events, notify.All); err != nil {
			o.log.Warn().Err(err).Str("dir", t.dir).Msg("cannot watch a folder outside the functions folder; SIGHUP still reloads it")
			continue
		}
		go w.forward(o.hints)
		o.current[key] = w
		o.log.Debug().Str("dir", t.dir).Bool("recursive", t.files == nil).Msg("watching outside the functions folder")
	}
}

func (o *outsideWatches) stopAll() {
	for key, w := range o.current {
		w.stop()
		delete(o.current, key)
	}
}

func (w *outsideWatch) stop() {
	notify.Stop(w.events)
	close(w.done)
}

// forward turns the watch's relevant events into hints until stopped.
func (w *outsideWatch) forward(hints chan<- struct{}) {
	for {
		select {
		case ev := <-w.events:
			if w.target.files == nil || w.target.files[filepath.Base(ev.Path())] {
				select {
				case hints <- struct{}{}:
				default: // a hint is already pending
				}
			}
		case <-w.done:
			return
		}
	}
}
