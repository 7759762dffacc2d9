package artifact

import (
	"archive/tar"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Pack verifies the artifact folder dir and writes it to w as one tar:
// manifest.json, manifest.sig (when priv is not nil: an ed25519 signature
// of manifest.json's exact bytes; else the folder's own manifest.sig, if
// any), then every listed file. Headers carry
// no time, owner or mode beyond 0644, so a folder packs byte-identically.
func Pack(dir string, w io.Writer, priv ed25519.PrivateKey, lim Limits) (*Manifest, error) {
	m, raw, err := Verify(dir, nil, lim)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(w)
	if err := writeEntry(tw, ManifestName, raw); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	sig := []byte(nil)
	if priv != nil {
		sig = ed25519.Sign(priv, raw)
	} else if old, err := readRegular(root, SignatureName, ed25519.SignatureSize); err == nil {
		sig = old // an unpacked signed package packs signed again
	}
	if sig != nil {
		if err := writeEntry(tw, SignatureName, sig); err != nil {
			return nil, err
		}
	}
	for _, f := range m.Functions {
		for _, file := range f.Files {
			name := FilePath(f.Name, file.Path)
			src, err := root.Open(name)
			if err != nil {
				return nil, err
			}
			err = writeHeader(tw, name, file.Size)
			if err == nil {
				_, err = io.Copy(tw, io.LimitReader(src, file.Size))
			}
			src.Close()
			if err != nil {
				return nil, fmt.Errorf("pack %s: %w", name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// The files were verified before packing; one changed since would
	// make the package fail verification where it is served.
	return m, nil
}

func writeHeader(tw *tar.Writer, name string, size int64) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX})
}

func writeEntry(tw *tar.Writer, name string, data []byte) error {
	if err := writeHeader(tw, name, int64(len(data))); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// Unpack extracts a package read from r (at most maxBytes) into dest, a
// folder it creates (it must not exist), and verifies the result (the
// signature with pub when pub is not nil). Only regular files and folders
// with plain relative paths are accepted: links, devices, absolute or ..
// paths, hidden segments, duplicates, more than lim.MaxFiles files, a
// file over lim.MaxFileBytes or more than lim.MaxTotalBytes in all are
// refused before anything is written past the limit. On any error dest is
// removed.
func Unpack(r io.Reader, maxBytes int64, dest string, pub ed25519.PublicKey, lim Limits) (m *Manifest, err error) {
	if err := os.Mkdir(dest, 0o700); err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dest)
		}
	}()
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	counted := &countingReader{r: r, left: maxBytes + 1}
	tr := tar.NewReader(counted)
	seen := map[string]bool{}
	var total int64
	files := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if counted.over {
				return nil, fmt.Errorf("unpack: the package is larger than the limit %d bytes", maxBytes)
			}
			return nil, fmt.Errorf("unpack: %w", err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if err := packageEntryName(name); err != nil {
			return nil, fmt.Errorf("unpack: entry %q: %w", hdr.Name, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("unpack: entry %s appears twice", name)
		}
		seen[name] = true
		switch hdr.Typeflag {
		case tar.TypeDir:
			if name == ManifestName || name == SignatureName {
				return nil, fmt.Errorf("unpack: entry %s: want a file", name)
			}
			if err := root.MkdirAll(name, 0o700); err != nil {
				return nil, fmt.Errorf("unpack: %s: %w", name, err)
			}
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("unpack: entry %s: only regular files and folders are accepted (type %q)", name, hdr.Typeflag)
		}
		files++
		if lim.MaxFiles > 0 && files > lim.MaxFiles+2 { // + manifest and signature
			return nil, fmt.Errorf("unpack: more than the limit of %d files", lim.MaxFiles)
		}
		if hdr.Size < 0 || (lim.MaxFileBytes > 0 && hdr.Size > lim.MaxFileBytes) {
			return nil, fmt.Errorf("unpack: entry %s: %d bytes, more than the limit %d", name, hdr.Size, lim.MaxFileBytes)
		}
		total += hdr.Size
		if lim.MaxTotalBytes > 0 && total > lim.MaxTotalBytes {
			return nil, fmt.Errorf("unpack: more than the limit of %d bytes of files", lim.MaxTotalBytes)
		}
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o700); err != nil {
				return nil, fmt.Errorf("unpack: %s: %w", name, err)
			}
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
		if err != nil {
			return nil, fmt.Errorf("unpack: %s: %w", name, err)
		}
		n, err := io.Copy(f, io.LimitReader(tr, hdr.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && n != hdr.Size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			if counted.over {
				return nil, fmt.Errorf("unpack: the package is larger than the limit %d bytes", maxBytes)
			}
			return nil, fmt.Errorf("unpack: %s: %w", name, err)
		}
	}
	m, _, err = Verify(dest, pub, lim)
	return m, err
}

// packageEntryName accepts manifest.json, manifest.sig and functions/...
// with a valid path.
func packageEntryName(name string) error {
	if name == ManifestName || name == SignatureName || name == FunctionsDir {
		return nil
	}
	rest, ok := strings.CutPrefix(name, FunctionsDir+"/")
	if !ok {
		return errors.New("not manifest.json, manifest.sig or under functions/")
	}
	if filepath.IsAbs(name) {
		return errors.New("absolute path")
	}
	return ValidPath(rest)
}

// countingReader fails once left bytes were read: it starts at the limit
// plus one, so reaching zero means the input is over the limit.
type countingReader struct {
	r    io.Reader
	left int64
	over bool
}

var errTooLarge = errors.New("package too large")

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.over = true
		return 0, errTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left <= 0 {
		c.over = true
		return n, errTooLarge
	}
	return n, err
}
