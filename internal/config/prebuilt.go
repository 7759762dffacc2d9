package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"edgeway.dev/edgeway/internal/artifact"
)

// ArtifactInfo says which verified artifact a layout was read from.
type ArtifactInfo struct {
	Source   string // --prebuilt, absolute
	Dir      string // the verified folder served (a package is unpacked)
	Manifest *artifact.Manifest
	// ID is the SHA-256 of manifest.json: it names the version (a
	// manifest lists every file's digest).
	ID     string
	Signed bool // its signature was verified with --verify-key
}

// ArtifactLimits are the --artifact-max-* limits.
func ArtifactLimits(o Options) artifact.Limits {
	return artifact.Limits{MaxFiles: o.ArtifactMaxFiles, MaxFileBytes: o.ArtifactMaxFileBytes, MaxTotalBytes: o.ArtifactMaxUnpacked}
}

// VerifyKey reads --verify-key; nil when unset.
func VerifyKey(o Options) (ed25519.PublicKey, error) {
	if o.VerifyKey == "" {
		return nil, nil
	}
	k, err := artifact.LoadPublicKey(o.VerifyKey)
	if err != nil {
		return nil, fmt.Errorf("flag --verify-key: %w", err)
	}
	return k, nil
}

// DiscoverPrebuilt reads the functions of the artifact --prebuilt names:
// a folder is verified in place, a package file is unpacked (once per
// content) into a private folder and verified there. Every file's size
// and SHA-256 must match the manifest, nothing unlisted may be present,
// and with --verify-key the manifest's signature must verify; the first
// mismatch is the error. Each function runs its bundle from the verified
// folder with no config, import map or lock of its own; its settings are
// the manifest's over the server defaults, and --public-functions and
// --function-permissions apply as for a folder.
func DiscoverPrebuilt(o Options) (*Layout, error) {
	pub, err := VerifyKey(o)
	if err != nil {
		return nil, err
	}
	lim := ArtifactLimits(o)
	src, err := filepath.Abs(o.Prebuilt)
	if err != nil {
		return nil, fmt.Errorf("flag --prebuilt: %w", err)
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("flag --prebuilt: %w", err)
	}
	dir := src
	if !st.IsDir() {
		if dir, err = unpackCached(src, o, pub, lim); err != nil {
			return nil, fmt.Errorf("flag --prebuilt: %w", err)
		}
	}
	m, raw, err := artifact.Verify(dir, pub, lim)
	if err != nil {
		return nil, fmt.Errorf("flag --prebuilt: %w", err)
	}
	sum := sha256.Sum256(raw)
	root := filepath.Join(dir, artifact.FunctionsDir)
	l := &Layout{Root: root, Artifact: &ArtifactInfo{Source: src, Dir: dir, Manifest: m, ID: hex.EncodeToString(sum[:]), Signed: pub != nil}}
	base := DefaultFunctionConfig(o)
	for _, f := range m.Functions {
		fnDir := filepath.Join(root, f.Name)
		label := fmt.Sprintf("%s: function %s: settings", filepath.Join(dir, artifact.ManifestName), f.Name)
		cfg, err := parseFunctionConfig(label, f.Settings, base)
		if err != nil {
			return nil, fmt.Errorf("flag --prebuilt: %w", err)
		}
		l.Functions = append(l.Functions, Function{Name: f.Name, Dir: fnDir, Entrypoint: filepath.Join(fnDir, filepath.FromSlash(f.Entry)), Config: cfg})
	}
	if err := applyOverrides(l, o); err != nil {
		return nil, err
	}
	l.SharedImports = map[string]string{}
	return l, nil
}

// unpackCached unpacks the package at src into a folder named after its
// SHA-256 under the private unpack folder, or reuses the one an earlier
// load made (Verify checks it again). A reload of the same package thus
// serves the same paths, and unchanged functions are not restarted.
func unpackCached(src string, o Options, pub ed25519.PublicKey, lim artifact.Limits) (string, error) {
	f, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.Size() > o.ArtifactMaxBytes {
		return "", fmt.Errorf("%s: %d bytes, more than --artifact-max-bytes %d", src, st.Size(), o.ArtifactMaxBytes)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, o.ArtifactMaxBytes+1)); err != nil {
		return "", fmt.Errorf("%s: %w", src, err)
	}
	id := hex.EncodeToString(h.Sum(nil))[:32]
	cache, err := unpackRoot()
	if err != nil {
		return "", err
	}
	dest := filepath.Join(cache, id)
	defer pruneUnpacked(cache, dest)
	if _, err := os.Lstat(dest); err == nil {
		if _, _, err := artifact.Verify(dest, pub, lim); err == nil {
			return dest, nil
		}
		if err := os.RemoveAll(dest); err != nil { // damaged: unpack afresh
			return "", err
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(cache, ".tmp-"+hex.EncodeToString(rnd[:]))
	if _, err := artifact.Unpack(f, o.ArtifactMaxBytes, tmp, pub, lim); err != nil {
		return "", fmt.Errorf("%s: %w", src, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.RemoveAll(tmp)
		if _, statErr := os.Lstat(dest); statErr == nil {
			return dest, nil // unpacked meanwhile by another load
		}
		return "", err
	}
	return dest, nil
}

// unpackKeep is how many unpacked packages are kept: the one just loaded
// and the ones loaded before it, whose workers may still be draining.
const unpackKeep = 3

// pruneUnpacked marks used as the latest one loaded and removes all but
// the unpackKeep most recently loaded packages, so a gateway reloading new
// packages for months does not fill its temporary folder.
func pruneUnpacked(cache, used string) {
	now := time.Now()
	os.Chtimes(used, now, now)
	entries, err := os.ReadDir(cache)
	if err != nil {
		return
	}
	type loaded struct {
		path string
		at   time.Time
	}
	var all []loaded
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.IsDir() && len(e.Name()) == 32 {
			all = append(all, loaded{filepath.Join(cache, e.Name()), info.ModTime()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at.After(all[j].at) })
	for i, l := range all {
		if i >= unpackKeep && l.path != used {
			os.RemoveAll(l.path)
		}
	}
}

// unpackRoot is the private folder packages are unpacked into:
// $TMPDIR/edgeway-artifacts-<uid>, mode 0700, which must be a real folder
// owned by this user (another user could otherwise plant files in it).
func unpackRoot() (string, error) {
	dir := filepath.Join(os.TempDir(), "edgeway-artifacts-"+strconv.Itoa(os.Getuid()))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("unpack folder: %w", err)
	}
	return dir, checkPrivateDir(dir)
}

// checkPrivateDir refuses a folder that is a link, not owned by this user
// or open to others.
func checkPrivateDir(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok || int(sys.Uid) != os.Getuid() || st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s must be a folder of this user with mode 0700", dir)
	}
	return nil
}

// Names inside --state-dir (see internal/deploy).
const (
	StateCurrent  = "current"  // the active version's id
	StateVersions = "versions" // versions/<id>/: unpacked, verified artifacts
)

// maxIDFile bounds reading the current file.
const maxIDFile = 256

// DeployedArtifact is the folder of the version last deployed into
// stateDir, "" when none was.
func DeployedArtifact(stateDir string) (string, error) {
	if _, err := os.Lstat(stateDir); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	// Whoever can write here chooses the code served.
	if err := checkPrivateDir(stateDir); err != nil {
		return "", fmt.Errorf("flag --state-dir: %w", err)
	}
	f, err := os.Open(filepath.Join(stateDir, StateCurrent))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("flag --state-dir: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxIDFile))
	if err != nil {
		return "", fmt.Errorf("flag --state-dir: %w", err)
	}
	id := string(bytes.TrimSpace(data))
	if !ValidVersionID(id) {
		return "", fmt.Errorf("flag --state-dir: %s holds no version id", filepath.Join(stateDir, StateCurrent))
	}
	return filepath.Join(stateDir, StateVersions, id), nil
}

// ValidVersionID accepts a version id: 64 lowercase hex digits (the
// manifest's sha256).
func ValidVersionID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
