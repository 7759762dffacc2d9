package deploy

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"edgeway.dev/edgeway/internal/artifact"
	"edgeway.dev/edgeway/internal/config"
)

// Errors the endpoint maps to status codes.
var (
	ErrBusy       = errors.New("a deploy or rollback is already running")
	ErrNoPrevious = errors.New("no previous version to roll back to")
	ErrRefused    = errors.New("package refused")
)

// Reloader swaps the served functions to a layout, make-before-break,
// and tells which artifact is served (lifecycle.Supervisor).
type Reloader interface {
	Reload(layout *config.Layout) error
	Artifact() *config.ArtifactInfo
}

// Version is one deployed version.
type Version struct {
	ID         string    `json:"id"`
	DeployedAt time.Time `json:"deployedAt"`
	Functions  []string  `json:"functions"`
	Signed     bool      `json:"signed"`
	Edgeway    string    `json:"builtBy"`
	Deno       string    `json:"builtWithDeno"`
}

// State is what GET /deploy answers.
type State struct {
	Active   *Version  `json:"active"`
	Previous []Version `json:"previous"` // newest first: rollback goes to the first
}

// Store is the deploy state of one gateway.
type Store struct {
	opts   config.Options
	pub    ed25519.PublicKey
	reload Reloader
	busy   atomic.Bool
	mu     sync.Mutex // guards history reads against a finishing deploy
	now    func() time.Time
}

const historyFile = "history.json"

// New prepares --state-dir (created with mode 0700; it must be a folder of
// this user closed to others).
func New(opts config.Options, reload Reloader) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(opts.StateDir, config.StateVersions), 0o700); err != nil {
		return nil, fmt.Errorf("flag --state-dir: %w", err)
	}
	if err := os.Chmod(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("flag --state-dir: %w", err)
	}
	pub, err := config.VerifyKey(opts)
	if err != nil {
		return nil, err
	}
	return &Store{opts: opts, pub: pub, reload: reload, now: time.Now}, nil
}

// Deploy unpacks and verifies a package read from r, swaps the functions
// to it and records it as the active version.
func (s *Store) Deploy(r io.Reader) (*Version, error) {
	if !s.busy.CompareAndSwap(false, true) {
		return nil, ErrBusy
	}
	defer s.busy.Store(false)
	versions := filepath.Join(s.opts.StateDir, config.StateVersions)
	tmp := filepath.Join(versions, ".upload-"+randomHex())
	m, err := artifact.Unpack(r, s.opts.ArtifactMaxBytes, tmp, s.pub, config.ArtifactLimits(s.opts))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	raw, err := os.ReadFile(filepath.Join(tmp, artifact.ManifestName))
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	id := manifestID(raw)
	dir := filepath.Join(versions, id)
	if _, err := os.Lstat(dir); err == nil {
		os.RemoveAll(tmp) // deployed before: the same bytes, kept
	} else if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	v := newVersion(id, m, s.pub != nil, s.now())
	hist, err := s.lockedHistory()
	if err != nil {
		return nil, err
	}
	if len(hist) > 0 && hist[len(hist)-1].ID == id {
		return &hist[len(hist)-1], nil // already active
	}
	if len(hist) == 0 {
		// The first deploy: the artifact served until now (--prebuilt)
		// becomes the version rollback returns to.
		if prev, err := s.adopt(); err != nil {
			return nil, fmt.Errorf("keep the running artifact for rollback: %w", err)
		} else if prev != nil {
			hist = append(hist, *prev)
		}
	}
	if err := s.activate(dir); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.save(append(hist, v), ""); err != nil {
		return nil, err
	}
	return &v, nil
}

func newVersion(id string, m *artifact.Manifest, signed bool, now time.Time) Version {
	v := Version{ID: id, DeployedAt: now.UTC(), Signed: signed, Edgeway: m.Edgeway, Deno: m.Deno, Functions: []string{}}
	for _, f := range m.Functions {
		v.Functions = append(v.Functions, f.Name)
	}
	return v
}

// adopt copies the artifact being served (when it is one) into the
// versions folder, packed and unpacked again so it is verified on the way.
func (s *Store) adopt() (*Version, error) {
	a := s.reload.Artifact()
	if a == nil {
		return nil, nil
	}
	dir := filepath.Join(s.opts.StateDir, config.StateVersions, a.ID)
	if _, err := os.Lstat(dir); err != nil {
		tmp := filepath.Join(s.opts.StateDir, config.StateVersions, ".adopt-"+randomHex())
		pr, pw := io.Pipe()
		go func() {
			// A panic ends the copy with an error, not the gateway.
			defer func() {
				if v := recover(); v != nil {
					pw.CloseWithError(fmt.Errorf("packing the running artifact panicked: %v", v))
				}
			}()
			_, err := artifact.Pack(a.Dir, pw, nil, config.ArtifactLimits(s.opts))
			pw.CloseWithError(err)
		}()
		// Its signature (if any) was checked when it was loaded; the copy
		// is unsigned, so it is verified without the key.
		// The source is local and its files are bounded by the limits: the
		// tar's own size needs no bound of its own.
		_, err := artifact.Unpack(pr, math.MaxInt64-1, tmp, nil, config.ArtifactLimits(s.opts))
		pr.CloseWithError(err)
		if err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, dir); err != nil {
			os.RemoveAll(tmp)
			return nil, err
		}
	}
	v := newVersion(a.ID, a.Manifest, a.Signed, s.now())
	return &v, nil
}

// Rollback swaps back to the version active before the current one.
func (s *Store) Rollback() (*Version, error) {
	if !s.busy.CompareAndSwap(false, true) {
		return nil, ErrBusy
	}
	defer s.busy.Store(false)
	hist, err := s.lockedHistory()
	if err != nil {
		return nil, err
	}
	if len(hist) < 2 {
		return nil, ErrNoPrevious
	}
	prev := hist[len(hist)-2]
	if err := s.activate(filepath.Join(s.opts.StateDir, config.StateVersions, prev.ID)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The version rolled back from keeps its files until the next save:
	// its workers may still be draining.
	if err := s.save(hist[:len(hist)-1], hist[len(hist)-1].ID); err != nil {
		return nil, err
	}
	return &prev, nil
}

// activate verifies the version in dir again, reloads to it and makes it
// current.
func (s *Store) activate(dir string) error {
	o := s.opts
	o.Prebuilt = dir
	layout, err := config.DiscoverPrebuilt(o)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	// current is written before the reload, so a SIGHUP rescanning
	// meanwhile reads the version being deployed, not the one it replaces
	// (reloads are coalesced, the latest wins); a refused reload puts the
	// previous value back.
	current := filepath.Join(s.opts.StateDir, config.StateCurrent)
	prev, prevErr := os.ReadFile(current)
	if err := writeAtomic(current, []byte(filepath.Base(dir)+"\n")); err != nil {
		return err
	}
	if err := s.reload.Reload(layout); err != nil {
		if prevErr == nil {
			writeAtomic(current, prev)
		} else {
			os.Remove(current)
		}
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return nil
}

// State lists the active version and the ones rollback can reach.
func (s *Store) State() (State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hist, err := s.history()
	if err != nil {
		return State{}, err
	}
	st := State{Previous: []Version{}}
	if len(hist) > 0 {
		st.Active = &hist[len(hist)-1]
		for i := len(hist) - 2; i >= 0; i-- {
			st.Previous = append(st.Previous, hist[i])
		}
	}
	return st, nil
}

// lockedHistory is history under the lock.
func (s *Store) lockedHistory() ([]Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.history()
}

// history reads history.json (empty when absent).
func (s *Store) history() ([]Version, error) {
	data, err := os.ReadFile(filepath.Join(s.opts.StateDir, historyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var hist []Version
	if err := json.Unmarshal(data, &hist); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(s.opts.StateDir, historyFile), err)
	}
	return hist, nil
}

// save writes the history, keeping the last --deploy-keep activations,
// and deletes the version folders no kept activation (nor spare) names.
func (s *Store) save(hist []Version, spare string) error {
	if len(hist) > s.opts.DeployKeep {
		hist = hist[len(hist)-s.opts.DeployKeep:]
	}
	data, err := json.MarshalIndent(hist, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(s.opts.StateDir, historyFile), data); err != nil {
		return err
	}
	keep := map[string]bool{spare: true}
	for _, v := range hist {
		keep[v.ID] = true
	}
	versions := filepath.Join(s.opts.StateDir, config.StateVersions)
	entries, err := os.ReadDir(versions)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if config.ValidVersionID(e.Name()) && !keep[e.Name()] {
			os.RemoveAll(filepath.Join(versions, e.Name()))
		}
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp-" + randomHex()
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func randomHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
