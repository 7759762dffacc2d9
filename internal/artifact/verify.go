package artifact

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
)

// Limits bound what an artifact may hold (flags --artifact-max-*).
type Limits struct {
	MaxFiles      int   // files in the whole artifact
	MaxFileBytes  int64 // one file, manifest.json included
	MaxTotalBytes int64 // every file together (unpacked)
}

// MismatchError names the first file that does not match the manifest.
type MismatchError struct {
	File string // slash-separated path inside the artifact
	Why  string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s failed its integrity check: %s", e.File, e.Why)
}

// Verify checks the artifact folder dir: manifest.json decodes (schema not
// newer than SchemaVersion), its signature verifies with pub when pub is
// not nil (manifest.sig required then), every listed file is a regular
// file of the listed size and SHA-256, and nothing else is present. Files
// are read through an os.Root, so no link can lead outside dir. The first
// mismatch is a *MismatchError naming the file.
func Verify(dir string, pub ed25519.PublicKey, lim Limits) (*Manifest, []byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("artifact %s: %w", dir, err)
	}
	defer root.Close()
	raw, err := readRegular(root, ManifestName, lim.MaxFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("artifact %s: no %s: not an edgeway artifact", dir, ManifestName)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("artifact %s: %w", dir, err)
	}
	if pub != nil {
		sig, err := readRegular(root, SignatureName, ed25519.SignatureSize)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("artifact %s: not signed (no %s) but a verify key is configured", dir, SignatureName)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("artifact %s: %w", dir, err)
		}
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, raw, sig) {
			return nil, nil, fmt.Errorf("artifact %s: the signature of %s does not verify with the verify key", dir, ManifestName)
		}
	}
	m, err := Decode(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("artifact %s: %w", dir, err)
	}
	listed := map[string]File{}
	var total int64
	for _, f := range m.Functions {
		for _, file := range f.Files {
			listed[FilePath(f.Name, file.Path)] = file
			total += file.Size
		}
	}
	if lim.MaxFiles > 0 && len(listed) > lim.MaxFiles {
		return nil, nil, fmt.Errorf("artifact %s: %d files, more than the limit %d", dir, len(listed), lim.MaxFiles)
	}
	if lim.MaxTotalBytes > 0 && total > lim.MaxTotalBytes {
		return nil, nil, fmt.Errorf("artifact %s: %d bytes of files, more than the limit %d", dir, total, lim.MaxTotalBytes)
	}
	for _, f := range m.Functions {
		for _, file := range f.Files {
			name := FilePath(f.Name, file.Path)
			if lim.MaxFileBytes > 0 && file.Size > lim.MaxFileBytes {
				return nil, nil, fmt.Errorf("artifact %s: %s: %d bytes, more than the limit %d", dir, name, file.Size, lim.MaxFileBytes)
			}
			if err := checkFile(root, name, file); err != nil {
				return nil, nil, fmt.Errorf("artifact %s: %w", dir, err)
			}
		}
	}
	if err := checkNothingElse(root, m, listed); err != nil {
		return nil, nil, fmt.Errorf("artifact %s: %w", dir, err)
	}
	return m, raw, nil
}

// readRegular reads a regular file (not a link) of at most max bytes.
func readRegular(root *os.Root, name string, max int64) ([]byte, error) {
	st, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	if max > 0 && st.Size() > max {
		return nil, fmt.Errorf("%s: %d bytes, more than the limit %d", name, st.Size(), max)
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, st.Size()+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if max > 0 && int64(len(data)) > max {
		return nil, fmt.Errorf("%s: more than the limit %d bytes", name, max)
	}
	return data, nil
}

// checkFile hashes one listed file.
func checkFile(root *os.Root, name string, want File) error {
	st, err := root.Lstat(name)
	if err != nil {
		return &MismatchError{File: name, Why: "missing"}
	}
	if !st.Mode().IsRegular() {
		return &MismatchError{File: name, Why: "not a regular file"}
	}
	f, err := root.Open(name)
	if err != nil {
		return &MismatchError{File: name, Why: err.Error()}
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, want.Size+1))
	if err != nil {
		return &MismatchError{File: name, Why: err.Error()}
	}
	if n != want.Size {
		return &MismatchError{File: name, Why: fmt.Sprintf("size %d, the manifest says %d", n, want.Size)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
		return &MismatchError{File: name, Why: fmt.Sprintf("sha256 %s, the manifest says %s", got, want.SHA256)}
	}
	return nil
}

// checkNothingElse refuses any entry the manifest does not list: an added
// file could be read by a function as if it were part of the build.
func checkNothingElse(root *os.Root, m *Manifest, listed map[string]File) error {
	dirs := map[string]bool{FunctionsDir: true}
	for name := range listed {
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var walk func(dir string) error
	walk = func(dir string) error {
		f, err := root.Open(dir)
		if err != nil {
			return err
		}
		entries, err := f.ReadDir(-1)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			name := e.Name()
			if dir == "." {
				switch {
				case (name == ManifestName || name == SignatureName) && e.Type().IsRegular():
					continue
				case name == FunctionsDir && e.Type().IsDir():
					if err := walk(name); err != nil {
						return err
					}
					continue
				}
				return &MismatchError{File: name, Why: "not listed in the manifest"}
			}
			name = dir + "/" + name
			switch {
			case e.Type().IsDir() && dirs[name]:
				if err := walk(name); err != nil {
					return err
				}
			case e.Type().IsRegular() && has(listed, name):
			default:
				return &MismatchError{File: name, Why: "not listed in the manifest"}
			}
		}
		return nil
	}
	if err := walk("."); err != nil {
		return err
	}
	if len(m.Functions) > 0 {
		if st, err := root.Lstat(FunctionsDir); err != nil || !st.IsDir() {
			return &MismatchError{File: FunctionsDir, Why: "missing"}
		}
	}
	return nil
}

func has(m map[string]File, k string) bool {
	_, ok := m[k]
	return ok
}
