package artifact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// SchemaVersion is the manifest schema this edgeway writes and the newest
// it reads: a newer one is refused, not guessed.
const SchemaVersion = 1

// Names inside an artifact.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
	FunctionsDir  = "functions"
)

// ErrNewerSchema is returned for a manifest of a schema newer than
// SchemaVersion.
var ErrNewerSchema = errors.New("the manifest's schema is newer than this edgeway reads")

// Manifest describes an artifact. Its JSON form (Encode) is canonical:
// functions sorted by name, files by path, no timestamps, so identical
// inputs build byte-identical manifests.
type Manifest struct {
	Schema    int        `json:"schema"`
	Edgeway   string     `json:"edgeway"` // version of the edgeway that built it
	Deno      string     `json:"deno"`    // version of the Deno that bundled it
	Functions []Function `json:"functions"`
}

// Function is one function of an artifact. Its files live under
// functions/<Name>/.
type Function struct {
	Name  string `json:"name"`
	Entry string `json:"entry"` // the bundle, one of Files
	// Settings are the function's resolved settings: its function.json with
	// what config.toml says about it merged in ("auth": false for
	// verify_jwt = false). Server defaults apply under them at serve time.
	Settings json.RawMessage `json:"settings"`
	// Env names the environment variables its code reads literally
	// (Deno.env.get("X"), process.env.X); never their values.
	Env   []string `json:"env"`
	Files []File   `json:"files"`
}

// File is one file of a function, Path relative to its folder.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lowercase hex
}

var (
	namePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	hexPattern  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	envPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// maxPathLen bounds a file path inside a function folder.
const maxPathLen = 1024

// Encode writes m in its canonical form.
func Encode(m *Manifest) ([]byte, error) {
	c := *m
	c.Functions = append([]Function(nil), m.Functions...)
	sort.Slice(c.Functions, func(i, j int) bool { return c.Functions[i].Name < c.Functions[j].Name })
	for i := range c.Functions {
		f := &c.Functions[i]
		f.Files = append([]File(nil), f.Files...)
		sort.Slice(f.Files, func(i, j int) bool { return f.Files[i].Path < f.Files[j].Path })
		f.Env = append([]string{}, f.Env...)
		sort.Strings(f.Env)
		if len(f.Settings) == 0 {
			f.Settings = json.RawMessage("{}")
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, f.Settings); err != nil {
			return nil, fmt.Errorf("function %s: settings: %w", f.Name, err)
		}
		f.Settings = buf.Bytes()
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Decode reads a manifest strictly: a schema newer than SchemaVersion is
// ErrNewerSchema; unknown fields, bad names, paths, sizes or digests are
// errors naming what is wrong.
func Decode(data []byte) (*Manifest, error) {
	var head struct {
		Schema *int `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	if head.Schema == nil {
		return nil, fmt.Errorf("%s: no \"schema\"", ManifestName)
	}
	if *head.Schema > SchemaVersion {
		return nil, fmt.Errorf("%s: schema %d: %w (%d); upgrade edgeway", ManifestName, *head.Schema, ErrNewerSchema, SchemaVersion)
	}
	if *head.Schema < 1 {
		return nil, fmt.Errorf("%s: schema %d: want 1 to %d", ManifestName, *head.Schema, SchemaVersion)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: unexpected data after the JSON object", ManifestName)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// check validates names, paths and digests.
func (m *Manifest) check() error {
	seen := map[string]bool{}
	for _, f := range m.Functions {
		if !namePattern.MatchString(f.Name) {
			return fmt.Errorf("%s: function name %q must match %s", ManifestName, f.Name, namePattern)
		}
		if seen[f.Name] {
			return fmt.Errorf("%s: function %s listed twice", ManifestName, f.Name)
		}
		seen[f.Name] = true
		var settings map[string]json.RawMessage
		if err := json.Unmarshal(f.Settings, &settings); err != nil || settings == nil {
			return fmt.Errorf("%s: function %s: \"settings\" must be an object", ManifestName, f.Name)
		}
		for _, e := range f.Env {
			if !envPattern.MatchString(e) {
				return fmt.Errorf("%s: function %s: env name %q must match %s", ManifestName, f.Name, e, envPattern)
			}
		}
		files := map[string]bool{}
		for _, file := range f.Files {
			if err := ValidPath(file.Path); err != nil {
				return fmt.Errorf("%s: function %s: file %q: %w", ManifestName, f.Name, file.Path, err)
			}
			if files[file.Path] {
				return fmt.Errorf("%s: function %s: file %s listed twice", ManifestName, f.Name, file.Path)
			}
			// A file may not also be a folder of another one.
			for p := path.Dir(file.Path); p != "."; p = path.Dir(p) {
				if files[p] {
					return fmt.Errorf("%s: function %s: %s is both a file and a folder", ManifestName, f.Name, p)
				}
			}
			files[file.Path] = true
			if file.Size < 0 {
				return fmt.Errorf("%s: function %s: file %s: negative size", ManifestName, f.Name, file.Path)
			}
			if !hexPattern.MatchString(file.SHA256) {
				return fmt.Errorf("%s: function %s: file %s: sha256 must be 64 lowercase hex digits", ManifestName, f.Name, file.Path)
			}
		}
		if !files[f.Entry] {
			return fmt.Errorf("%s: function %s: entry %q is not one of its files", ManifestName, f.Name, f.Entry)
		}
	}
	return nil
}

// ValidPath accepts a plain relative slash-separated path: no leading
// slash, no empty, "." or ".." segment, no hidden segment, no backslash
// or control character.
func ValidPath(p string) error {
	if p == "" || len(p) > maxPathLen {
		return fmt.Errorf("want 1 to %d bytes", maxPathLen)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return errors.New("control character or backslash")
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || strings.HasPrefix(seg, ".") {
			return errors.New("want a plain relative path (no empty, hidden, . or .. segment)")
		}
	}
	return nil
}

// FilePath is where a function's file lives inside an artifact, slash
// separated.
func FilePath(function, file string) string {
	return FunctionsDir + "/" + function + "/" + file
}
