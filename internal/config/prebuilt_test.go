package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"edgeway.dev/edgeway/internal/artifact"
)

// testArtifact writes an artifact folder with one function "hello".
func testArtifact(t *testing.T, settings string) string {
	t.Helper()
	dir := t.TempDir()
	code := []byte("Deno.serve(() => new Response('hi'))")
	p := filepath.Join(dir, "functions", "hello", "index.js")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, code, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(code)
	raw, err := artifact.Encode(&artifact.Manifest{Schema: 1, Functions: []artifact.Function{{
		Name: "hello", Entry: "index.js", Settings: []byte(settings),
		Files: []artifact.File{{Path: "index.js", Size: int64(len(code)), SHA256: hex.EncodeToString(sum[:])}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func prebuiltOpts(t *testing.T, args ...string) Options {
	t.Helper()
	o, err := Parse(args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestDiscoverPrebuiltFolder(t *testing.T) {
	dir := testArtifact(t, `{"auth": false, "maxWorkers": 3}`)
	l, err := Discover("/nonexistent", prebuiltOpts(t, "--prebuilt", dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Functions) != 1 || l.Artifact == nil || len(l.Artifact.ID) != 64 {
		t.Fatalf("layout %+v", l)
	}
	fn := l.Functions[0]
	if fn.Entrypoint != filepath.Join(dir, "functions", "hello", "index.js") || !fn.Config.Public || fn.Config.MaxWorkers != 3 || fn.Deps.Config != "" {
		t.Fatalf("function %+v", fn)
	}
	if _, err := Discover("", prebuiltOpts(t, "--prebuilt", testArtifact(t, `{"maxWorkers": 0}`))); err == nil || !strings.Contains(err.Error(), "maxWorkers") {
		t.Fatalf("bad settings: %v", err)
	}

	os.WriteFile(filepath.Join(dir, "functions", "hello", "index.js"), []byte("Deno.serve(() => new Response('HI'))"), 0o644)
	_, err = Discover("", prebuiltOpts(t, "--prebuilt", dir))
	if err == nil || !strings.Contains(err.Error(), "functions/hello/index.js failed its integrity check") {
		t.Fatalf("tampered: %v", err)
	}
}

func TestDiscoverPrebuiltPackage(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dir := testArtifact(t, `{}`)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	keyFile := filepath.Join(t.TempDir(), "k.pub")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	var signed, unsigned bytes.Buffer
	if _, err := artifact.Pack(dir, &signed, priv, ArtifactLimits(Defaults())); err != nil {
		t.Fatal(err)
	}
	artifact.Pack(dir, &unsigned, nil, ArtifactLimits(Defaults()))
	pkgDir := t.TempDir()
	signedPath, unsignedPath := filepath.Join(pkgDir, "s.edgeway"), filepath.Join(pkgDir, "u.edgeway")
	os.WriteFile(signedPath, signed.Bytes(), 0o644)
	os.WriteFile(unsignedPath, unsigned.Bytes(), 0o644)

	a, err := Discover("", prebuiltOpts(t, "--prebuilt", signedPath, "--verify-key", keyFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Discover("", prebuiltOpts(t, "--prebuilt", signedPath, "--verify-key", keyFile))
	if err != nil {
		t.Fatal(err)
	}
	if a.Root != b.Root || !a.Artifact.Signed {
		t.Fatalf("the same package unpacked to %s then %s", a.Root, b.Root)
	}
	if _, err := Discover("", prebuiltOpts(t, "--prebuilt", unsignedPath, "--verify-key", keyFile)); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("unsigned package with a verify key: %v", err)
	}
	if _, err := Discover("", prebuiltOpts(t, "--prebuilt", signedPath, "--artifact-max-bytes", "100")); err == nil || !strings.Contains(err.Error(), "artifact-max-bytes") {
		t.Fatalf("size limit: %v", err)
	}
	// A tampered unpacked copy is noticed and unpacked afresh.
	os.Chmod(filepath.Join(a.Root, "hello", "index.js"), 0o644)
	os.WriteFile(filepath.Join(a.Root, "hello", "index.js"), []byte("x"), 0o644)
	if _, err := Discover("", prebuiltOpts(t, "--prebuilt", signedPath, "--verify-key", keyFile)); err != nil {
		t.Fatalf("after tampering with the unpacked copy: %v", err)
	}
}

func TestUnpackedPackagesArePruned(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var roots []string
	for i := range unpackKeep + 2 {
		dir := testArtifact(t, fmt.Sprintf(`{"maxWorkers": %d}`, i+1))
		var buf bytes.Buffer
		if _, err := artifact.Pack(dir, &buf, nil, ArtifactLimits(Defaults())); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "app.edgeway")
		os.WriteFile(p, buf.Bytes(), 0o644)
		l, err := Discover("", prebuiltOpts(t, "--prebuilt", p))
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, l.Artifact.Dir)
		// mtimes must differ for the order to be known.
		old := time.Now().Add(time.Duration(i-10) * time.Minute)
		os.Chtimes(l.Artifact.Dir, old, old)
	}
	cache, _ := unpackRoot()
	entries, _ := os.ReadDir(cache)
	if len(entries) != unpackKeep {
		t.Fatalf("%d unpacked packages kept, want %d", len(entries), unpackKeep)
	}
	if _, err := os.Stat(roots[0]); !os.IsNotExist(err) {
		t.Fatal("the oldest unpacked package was kept")
	}
	if _, err := os.Stat(roots[len(roots)-1]); err != nil {
		t.Fatal("the latest unpacked package was removed")
	}
}
