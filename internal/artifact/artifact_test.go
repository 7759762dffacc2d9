package artifact

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testLimits = Limits{MaxFiles: 100, MaxFileBytes: 1 << 20, MaxTotalBytes: 4 << 20}

// writeArtifact builds a valid artifact folder with the given function
// files and returns its path.
func writeArtifact(t *testing.T, files map[string]map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	m := &Manifest{Schema: SchemaVersion, Edgeway: "test", Deno: "2.9.6"}
	for name, fs := range files {
		f := Function{Name: name, Entry: "index.js", Settings: []byte(`{"auth":false}`), Env: []string{"B", "A"}}
		for p, content := range fs {
			full := filepath.Join(dir, FunctionsDir, name, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(content))
			f.Files = append(f.Files, File{Path: p, Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])})
		}
		m.Functions = append(m.Functions, f)
	}
	raw, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func sampleArtifact(t *testing.T) string {
	return writeArtifact(t, map[string]map[string]string{
		"hello": {"index.js": "Deno.serve(() => new Response('hi'))", "page/index.html": "<p>hi</p>"},
		"echo":  {"index.js": "Deno.serve((r) => r)"},
	})
}

func TestEncodeIsCanonical(t *testing.T) {
	a := &Manifest{Schema: 1, Functions: []Function{
		{Name: "b", Entry: "index.js", Settings: []byte(`{ "x" : 1 }`), Files: []File{{Path: "z", SHA256: strings.Repeat("0", 64)}, {Path: "index.js", SHA256: strings.Repeat("1", 64)}}},
		{Name: "a", Entry: "index.js", Files: []File{{Path: "index.js", SHA256: strings.Repeat("2", 64)}}},
	}}
	b := &Manifest{Schema: 1, Functions: []Function{a.Functions[1], a.Functions[0]}}
	b.Functions[1].Files = []File{a.Functions[0].Files[1], a.Functions[0].Files[0]}
	ra, err := Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ra, rb) {
		t.Fatalf("order changed the encoding:\n%s\n%s", ra, rb)
	}
	m, err := Decode(ra)
	if err != nil {
		t.Fatal(err)
	}
	var settings bytes.Buffer
	json.Compact(&settings, m.Functions[1].Settings)
	if m.Functions[0].Name != "a" || settings.String() != `{"x":1}` {
		t.Fatalf("decoded %+v", m)
	}
}

func TestDecodeRefuses(t *testing.T) {
	h := strings.Repeat("a", 64)
	for _, tc := range []struct{ name, json, want string }{
		{"newer schema", `{"schema": 2, "functions": []}`, "newer"},
		{"no schema", `{"functions": []}`, "no \"schema\""},
		{"zero schema", `{"schema": 0}`, "want 1"},
		{"unknown field", `{"schema": 1, "x": 1}`, "unknown field"},
		{"bad name", `{"schema":1,"functions":[{"name":"../x","entry":"a","settings":{},"files":[{"path":"a","size":1,"sha256":"` + h + `"}]}]}`, "must match"},
		{"dotdot path", `{"schema":1,"functions":[{"name":"x","entry":"a","settings":{},"files":[{"path":"../a","size":1,"sha256":"` + h + `"}]}]}`, "plain relative"},
		{"absolute path", `{"schema":1,"functions":[{"name":"x","entry":"/a","settings":{},"files":[{"path":"/a","size":1,"sha256":"` + h + `"}]}]}`, "plain relative"},
		{"backslash", `{"schema":1,"functions":[{"name":"x","entry":"a\\b","settings":{},"files":[{"path":"a\\b","size":1,"sha256":"` + h + `"}]}]}`, "backslash"},
		{"hidden", `{"schema":1,"functions":[{"name":"x","entry":".env","settings":{},"files":[{"path":".env","size":1,"sha256":"` + h + `"}]}]}`, "hidden"},
		{"entry not a file", `{"schema":1,"functions":[{"name":"x","entry":"b","settings":{},"files":[{"path":"a","size":1,"sha256":"` + h + `"}]}]}`, "not one of its files"},
		{"bad digest", `{"schema":1,"functions":[{"name":"x","entry":"a","settings":{},"files":[{"path":"a","size":1,"sha256":"AB"}]}]}`, "sha256"},
		{"negative size", `{"schema":1,"functions":[{"name":"x","entry":"a","settings":{},"files":[{"path":"a","size":-1,"sha256":"` + h + `"}]}]}`, "negative"},
		{"duplicate function", `{"schema":1,"functions":[{"name":"x","entry":"a","settings":{},"files":[{"path":"a","size":1,"sha256":"` + h + `"}]},{"name":"x","entry":"a","settings":{},"files":[{"path":"a","size":1,"sha256":"` + h + `"}]}]}`, "twice"},
		{"file and folder", `{"schema":1,"functions":[{"name":"x","entry":"a","settings":{},"files":[{"path":"a","size":1,"sha256":"` + h + `"},{"path":"a/b","size":1,"sha256":"` + h + `"}]}]}`, "both a file and a folder"},
		{"settings not object", `{"schema":1,"functions":[{"name":"x","entry":"a","settings":[],"files":[{"path":"a","size":1,"sha256":"` + h + `"}]}]}`, "settings"},
		{"bad env", `{"schema":1,"functions":[{"name":"x","entry":"a","settings":{},"env":["A=B"],"files":[{"path":"a","size":1,"sha256":"` + h + `"}]}]}`, "env name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := Decode([]byte(`{"schema": 9}`)); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("newer schema: %v", err)
	}
}

func TestVerify(t *testing.T) {
	dir := sampleArtifact(t)
	m, _, err := Verify(dir, nil, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Functions) != 2 || m.Functions[0].Name != "echo" {
		t.Fatalf("manifest %+v", m)
	}
	for _, tc := range []struct {
		name   string
		change func(dir string)
		want   string
	}{
		{"flipped byte", func(dir string) {
			p := filepath.Join(dir, "functions/hello/index.js")
			b, _ := os.ReadFile(p)
			b[3] ^= 1
			os.WriteFile(p, b, 0o644)
		}, "functions/hello/index.js failed its integrity check: sha256"},
		{"longer", func(dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, "functions/echo/index.js"), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(" ")
			f.Close()
		}, "functions/echo/index.js failed its integrity check: size"},
		{"missing", func(dir string) { os.Remove(filepath.Join(dir, "functions/hello/page/index.html")) }, "functions/hello/page/index.html failed its integrity check: missing"},
		{"added file", func(dir string) { os.WriteFile(filepath.Join(dir, "functions/hello/extra.js"), nil, 0o644) }, "functions/hello/extra.js failed its integrity check: not listed"},
		{"added top-level", func(dir string) { os.WriteFile(filepath.Join(dir, "README"), nil, 0o644) }, "README failed its integrity check: not listed"},
		{"symlink replaces file", func(dir string) {
			p := filepath.Join(dir, "functions/echo/index.js")
			os.Rename(p, p+"x")
			os.Symlink("index.jsx", p)
		}, "functions/echo/index.js failed its integrity check: not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sampleArtifact(t)
			tc.change(dir)
			_, _, err := Verify(dir, nil, testLimits)
			var mm *MismatchError
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &mm) {
				t.Fatalf("got %v, want a MismatchError containing %q", err, tc.want)
			}
		})
	}
	if _, _, err := Verify(dir, nil, Limits{MaxFileBytes: 1 << 20, MaxFiles: 2}); err == nil || !strings.Contains(err.Error(), "limit 2") {
		t.Fatalf("file limit: %v", err)
	}
}

func TestPackUnpackSigned(t *testing.T) {
	dir := sampleArtifact(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	var a, b bytes.Buffer
	if _, err := Pack(dir, &a, priv, testLimits); err != nil {
		t.Fatal(err)
	}
	if _, err := Pack(dir, &b, priv, testLimits); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("packing twice gave different bytes")
	}
	dest := filepath.Join(t.TempDir(), "x")
	m, err := Unpack(bytes.NewReader(a.Bytes()), 1<<20, dest, pub, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "functions/hello/page/index.html")); string(got) != "<p>hi</p>" || len(m.Functions) != 2 {
		t.Fatalf("unpacked %q %+v", got, m)
	}
	dest2 := filepath.Join(t.TempDir(), "y")
	if _, err := Unpack(bytes.NewReader(a.Bytes()), 1<<20, dest2, other, testLimits); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("other key: %v", err)
	}
	if _, err := os.Stat(dest2); !os.IsNotExist(err) {
		t.Fatalf("a refused package left %s behind", dest2)
	}
	var unsigned bytes.Buffer
	if _, err := Pack(dir, &unsigned, nil, testLimits); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(bytes.NewReader(unsigned.Bytes()), 1<<20, filepath.Join(t.TempDir(), "z"), pub, testLimits); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("unsigned with a verify key: %v", err)
	}
	if _, err := Unpack(bytes.NewReader(unsigned.Bytes()), 1<<20, filepath.Join(t.TempDir(), "z"), nil, testLimits); err != nil {
		t.Fatalf("unsigned without a verify key: %v", err)
	}
}

// hostileTar writes raw tar entries.
func hostileTar(t *testing.T, entries []tar.Header, body func(i int) []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, h := range entries {
		data := body(i)
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(data)
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestUnpackRefusesHostileEntries(t *testing.T) {
	reg := func(name string) tar.Header { return tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644} }
	small := func(int) []byte { return []byte("x") }
	for _, tc := range []struct {
		name    string
		entries []tar.Header
		body    func(int) []byte
		max     int64
		want    string
	}{
		{"dotdot", []tar.Header{reg("functions/../../evil")}, small, 1 << 20, "plain relative"},
		{"absolute", []tar.Header{reg("/etc/passwd")}, small, 1 << 20, "not manifest.json"},
		{"outside functions", []tar.Header{reg("evil.js")}, small, 1 << 20, "not manifest.json"},
		{"hidden", []tar.Header{reg("functions/a/.env")}, small, 1 << 20, "hidden"},
		{"symlink", []tar.Header{{Typeflag: tar.TypeSymlink, Name: "functions/a/index.js", Linkname: "/etc/passwd"}}, small, 1 << 20, "only regular files"},
		{"hardlink", []tar.Header{{Typeflag: tar.TypeLink, Name: "functions/a/index.js", Linkname: "manifest.json"}}, small, 1 << 20, "only regular files"},
		{"device", []tar.Header{{Typeflag: tar.TypeChar, Name: "functions/a/tty"}}, small, 1 << 20, "only regular files"},
		{"duplicate", []tar.Header{reg("functions/a/x"), reg("functions/a/x")}, small, 1 << 20, "twice"},
		{"huge file", []tar.Header{{Typeflag: tar.TypeReg, Name: "functions/a/x", Size: 2 << 20}}, func(int) []byte { return make([]byte, 2<<20) }, 8 << 20, "more than the limit"},
		{"package over limit", []tar.Header{reg("functions/a/x")}, func(int) []byte { return make([]byte, 4096) }, 2048, "larger than the limit"},
		{"no manifest", []tar.Header{reg("functions/a/x")}, small, 1 << 20, "manifest.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := hostileTar(t, tc.entries, tc.body)
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			_, err := Unpack(bytes.NewReader(data), tc.max, dest, nil, testLimits)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Fatal("a refused package left its folder behind")
			}
			entries, _ := os.ReadDir(parent)
			if len(entries) != 0 {
				t.Fatalf("something was written outside the destination: %v", entries)
			}
		})
	}
	many := make([]tar.Header, 0, 200)
	for i := range 200 {
		many = append(many, reg("functions/a/f"+strings.Repeat("x", i%50)+string(rune('a'+i/50))))
	}
	if _, err := Unpack(bytes.NewReader(hostileTar(t, many, small)), 1<<30, filepath.Join(t.TempDir(), "o"), nil, testLimits); err == nil || !strings.Contains(err.Error(), "limit of 100 files") {
		t.Fatalf("too many files: %v", err)
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k"), filepath.Join(dir, "k.pub")
	if err := GenerateKeys(priv, pub); err != nil {
		t.Fatal(err)
	}
	if err := GenerateKeys(priv, pub); err == nil {
		t.Fatal("GenerateKeys overwrote a key")
	}
	if st, _ := os.Stat(priv); st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", st.Mode())
	}
	k, err := LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Equal(k.Public()) {
		t.Fatal("the key pair does not match")
	}
	if _, err := LoadPublicKey(priv); err == nil {
		t.Fatal("a private key was read as a public one")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"schema":1,"functions":[{"name":"x","entry":"a","settings":{},"files":[{"path":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}]}`))
	f.Add([]byte(`{"schema":2}`))
	f.Add([]byte(`{"schema":1,"functions":[{"name":"x","entry":"../a"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		for _, fn := range m.Functions {
			for _, file := range fn.Files {
				if ValidPath(file.Path) != nil || strings.Contains(file.Path, "..") && strings.Contains("/"+file.Path+"/", "/../") {
					t.Fatalf("accepted path %q", file.Path)
				}
			}
		}
	})
}

func FuzzUnpack(f *testing.F) {
	f.Add(hostileTar(&testing.T{}, []tar.Header{{Typeflag: tar.TypeReg, Name: "functions/a/../../x", Mode: 0o644}}, func(int) []byte { return []byte("x") }))
	f.Add(hostileTar(&testing.T{}, []tar.Header{{Typeflag: tar.TypeSymlink, Name: "functions/a/x", Linkname: "/"}}, func(int) []byte { return nil }))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		Unpack(bytes.NewReader(data), 1<<20, filepath.Join(parent, "out"), nil, testLimits)
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if e.Name() != "out" {
				t.Fatalf("wrote %s outside the destination", e.Name())
			}
		}
	})
}
