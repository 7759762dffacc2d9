package lifecycle

import (
	"path/filepath"
	"strings"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/observe"

	"github.com/rjeczalik/notify"
)

// watchBuffer is the notify channel's capacity. notify drops events when
// the channel is full, which is harmless here: events are only hints that
// trigger a full rescan.
const watchBuffer = 256

// Watch reloads whenever the functions folder (recursively), the folder
// holding config.toml, or something a function depends on outside them
// (symlink targets, config and import map files elsewhere) changes: events
// are debounced (editors write several times per save) and then the folder
// is rescanned, so a missed event or a deep `mkdir -p` still ends in the
// right state. It runs until stop is closed; a panic in it is recovered
// (edgeway_panics_total{where="watcher"}) and the watch set up afresh after
// watchRestartDelay.
func (s *Supervisor) Watch(root string, debounce time.Duration, rescan func() (*config.Layout, error), stop <-chan struct{}) error {
	for {
		var err error
		if observe.Guard(s.log, observe.PanicWatcher, func() { err = s.watch(root, debounce, rescan, stop) }) {
			return err
		}
		select {
		case <-time.After(watchRestartDelay):
		case <-stop:
			return nil
		}
	}
}

// watchRestartDelay paces restarts after a panic, so a watcher that panics
// at once cannot spin.
const watchRestartDelay = time.Second

func (s *Supervisor) watch(root string, debounce time.Duration, rescan func() (*config.Layout, error), stop <-chan struct{}) error {
	events := make(chan notify.EventInfo, watchBuffer)
	if err := notify.Watch(filepath.Join(root, "..."), events, notify.All); err != nil {
		return err
	}
	defer notify.Stop(events)
	if err := notify.Watch(filepath.Dir(root), events, notify.All); err != nil {
		return err
	}
	outside := newOutsideWatches(s.log)
	defer outside.stopAll()
	outside.sync(s.currentLayout())
	// notify reports paths with symlinks resolved.
	realRoot := config.Resolved(root)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case ev := <-events:
			if relevant(root, ev.Path()) || relevant(realRoot, ev.Path()) {
				timer.Reset(debounce)
			}
		case <-outside.hints:
			timer.Reset(debounce)
		case <-timer.C:
			s.ReloadFromDisk(rescan, "watch")
			outside.sync(s.currentLayout())
		case <-s.reloaded:
			outside.sync(s.currentLayout())
		case <-stop:
			return nil
		}
	}
}

// relevant reports whether a change at path can affect the functions: any
// path inside the functions folder, and only config.toml in the folder
// above it (logs or other files written there must not trigger reloads).
func relevant(root, path string) bool {
	if path == root || strings.HasPrefix(path, root+string(filepath.Separator)) {
		return true
	}
	return filepath.Dir(path) == filepath.Dir(root) && filepath.Base(path) == "config.toml"
}

// ReloadFromDisk rescans the functions folder and reloads what changed;
// errors are logged and the running functions kept.
func (s *Supervisor) ReloadFromDisk(rescan func() (*config.Layout, error), trigger string) {
	layout, err := rescan()
	if err != nil {
		s.log.Error().Err(err).Str("trigger", trigger).Msg("reload refused: the running functions are kept")
		return
	}
	s.log.Info().Str("trigger", trigger).Msg("reloading functions")
	s.Reload(layout)
	select {
	case s.reloaded <- struct{}{}:
	default: // a sync is already pending
	}
}
