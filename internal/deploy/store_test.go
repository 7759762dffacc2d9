package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"edgeway.dev/edgeway/internal/artifact"
	"edgeway.dev/edgeway/internal/config"
)

// fakeReloader records the layouts it was given.
type fakeReloader struct {
	mu       sync.Mutex
	layouts  []*config.Layout
	block    chan struct{} // when set, Reload waits on it
	entered  chan struct{}
	artifact *config.ArtifactInfo
	fail     error // when set, Reload refuses with it
}

func (f *fakeReloader) Reload(l *config.Layout) error {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.layouts = append(f.layouts, l)
	f.artifact = l.Artifact
	return nil
}

func (f *fakeReloader) Artifact() *config.ArtifactInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.artifact
}

func (f *fakeReloader) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.layouts[len(f.layouts)-1].Functions[0].Name
}

// pkg packs an artifact with one function called name.
func pkg(t *testing.T, name string) []byte {
	t.Helper()
	dir := t.TempDir()
	code := []byte("Deno.serve(() => new Response('" + name + "'))")
	p := filepath.Join(dir, "functions", name, "index.js")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, code, 0o644)
	sum := sha256.Sum256(code)
	raw, err := artifact.Encode(&artifact.Manifest{Schema: 1, Functions: []artifact.Function{{Name: name, Entry: "index.js", Settings: []byte(`{}`),
		Files: []artifact.File{{Path: "index.js", Size: int64(len(code)), SHA256: hex.EncodeToString(sum[:])}}}}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644)
	var buf bytes.Buffer
	if _, err := artifact.Pack(dir, &buf, nil, artifact.Limits{}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newStore(t *testing.T, rl *fakeReloader, args ...string) (*Store, config.Options) {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	o, err := config.Parse(append([]string{"--state-dir", state, "--deploy-key", "k", "--admin-listen", "127.0.0.1:0"}, args...), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(o, rl)
	if err != nil {
		t.Fatal(err)
	}
	return s, o
}

func TestDeployRollback(t *testing.T) {
	rl := &fakeReloader{}
	s, o := newStore(t, rl, "--deploy-keep", "2")
	if _, err := s.Rollback(); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("rollback with nothing deployed: %v", err)
	}
	v1, err := s.Deploy(bytes.NewReader(pkg(t, "one")))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.Deploy(bytes.NewReader(pkg(t, "two")))
	if err != nil {
		t.Fatal(err)
	}
	if rl.last() != "two" {
		t.Fatalf("serving %s after the second deploy", rl.last())
	}
	st, _ := s.State()
	if st.Active.ID != v2.ID || len(st.Previous) != 1 || st.Previous[0].ID != v1.ID {
		t.Fatalf("state %+v", st)
	}
	// A restart serves what was deployed last.
	l, err := config.Discover("/nonexistent", o)
	if err != nil || l.Functions[0].Name != "two" {
		t.Fatalf("restart would serve %v (%v)", l, err)
	}
	back, err := s.Rollback()
	if err != nil || back.ID != v1.ID || rl.last() != "one" {
		t.Fatalf("rollback: %v %v, serving %s", back, err, rl.last())
	}
	if l, _ := config.Discover("/nonexistent", o); l.Functions[0].Name != "one" {
		t.Fatalf("after rollback a restart serves %s", l.Functions[0].Name)
	}
	// --deploy-keep 2 prunes the oldest folders.
	s.Deploy(bytes.NewReader(pkg(t, "three")))
	s.Deploy(bytes.NewReader(pkg(t, "four")))
	entries, _ := os.ReadDir(filepath.Join(o.StateDir, config.StateVersions))
	if len(entries) > 3 { // two kept, at most one spared while draining
		t.Fatalf("%d version folders kept", len(entries))
	}
}

func TestDeployRefusesAndKeepsRunning(t *testing.T) {
	rl := &fakeReloader{}
	s, o := newStore(t, rl)
	v1, err := s.Deploy(bytes.NewReader(pkg(t, "one")))
	if err != nil {
		t.Fatal(err)
	}
	bad := pkg(t, "two")
	bad[bytes.Index(bad, []byte("Deno.serve"))] ^= 1
	if _, err := s.Deploy(bytes.NewReader(bad)); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "integrity") {
		t.Fatalf("tampered package: %v", err)
	}
	if _, err := s.Deploy(strings.NewReader("not a tar")); !errors.Is(err, ErrRefused) {
		t.Fatalf("garbage: %v", err)
	}
	st, _ := s.State()
	if st.Active.ID != v1.ID || rl.last() != "one" {
		t.Fatalf("a refused deploy changed the state: %+v", st)
	}
	entries, _ := os.ReadDir(filepath.Join(o.StateDir, config.StateVersions))
	if len(entries) != 1 {
		t.Fatalf("a refused deploy left files: %v", entries)
	}
}

func TestDeployOneAtATime(t *testing.T) {
	rl := &fakeReloader{block: make(chan struct{}), entered: make(chan struct{})}
	s, _ := newStore(t, rl)
	done := make(chan error)
	go func() {
		_, err := s.Deploy(bytes.NewReader(pkg(t, "one")))
		done <- err
	}()
	<-rl.entered
	if _, err := s.Deploy(bytes.NewReader(pkg(t, "two"))); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second deploy while one runs: %v", err)
	}
	if _, err := s.Rollback(); !errors.Is(err, ErrBusy) {
		t.Fatalf("a rollback while a deploy runs: %v", err)
	}
	close(rl.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDeployAdoptsTheRunningArtifact(t *testing.T) {
	rl := &fakeReloader{}
	s, o := newStore(t, rl)
	// The gateway serves a --prebuilt package before any deploy.
	first := filepath.Join(t.TempDir(), "first.edgeway")
	os.WriteFile(first, pkg(t, "first"), 0o644)
	po := o
	po.StateDir, po.Prebuilt = "", first
	l, err := config.DiscoverPrebuilt(po)
	if err != nil {
		t.Fatal(err)
	}
	rl.artifact = l.Artifact
	if _, err := s.Deploy(bytes.NewReader(pkg(t, "second"))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rollback(); err != nil || rl.last() != "first" {
		t.Fatalf("rollback to the --prebuilt artifact: %v, serving %s", err, rl.last())
	}
}

func TestDeployRefusedReloadKeepsCurrent(t *testing.T) {
	rl := &fakeReloader{}
	s, o := newStore(t, rl)
	if _, err := s.Deploy(bytes.NewReader(pkg(t, "one"))); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(o.StateDir, config.StateCurrent))
	rl.fail = errors.New("invalid layout")
	if _, err := s.Deploy(bytes.NewReader(pkg(t, "two"))); !errors.Is(err, ErrRefused) {
		t.Fatalf("refused reload: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(o.StateDir, config.StateCurrent))
	if string(before) != string(after) {
		t.Fatalf("current changed from %q to %q after a refused reload", before, after)
	}
	if st, _ := s.State(); len(st.Previous) != 0 {
		t.Fatalf("a refused deploy entered the history: %+v", st)
	}
}
