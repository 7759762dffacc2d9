package main

import (
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"edgeway.dev/edgeway/internal/artifact"
	"edgeway.dev/edgeway/internal/config"
)

func init() {
	commandHelp["package"] = "Pack an artifact folder of `edgeway build` into one file for `serve --prebuilt` and the deploy endpoint."
	commandHelp["keygen"] = "Write an ed25519 key pair for signing packages (--sign-key) and checking them (--verify-key)."
}

// packageArtifact writes an artifact folder as one tar, signed when
// --sign-key is given. The folder is verified first.
func packageArtifact(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("edgeway package", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "dist", "artifact folder written by `edgeway build`")
	out := fs.String("out", "", "package file to write (required), e.g. app.edgeway")
	signKey := fs.String("sign-key", "", "ed25519 private key (PEM, from `edgeway keygen`) to sign the manifest with")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "edgeway package: want --out FILE (and optionally --from DIR, --sign-key FILE)")
		return 2
	}
	var priv ed25519.PrivateKey
	if *signKey != "" {
		k, err := artifact.LoadPrivateKey(*signKey)
		if err != nil {
			return fail(stderr, fmt.Errorf("flag --sign-key: %w", err))
		}
		priv = k
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".tmp-")
	if err != nil {
		return fail(stderr, err)
	}
	defer os.Remove(tmp.Name())
	m, err := artifact.Pack(*from, tmp, priv, config.ArtifactLimits(config.Defaults()))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(stderr, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fail(stderr, err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fail(stderr, err)
	}
	signed := "unsigned"
	if priv != nil {
		signed = "signed"
	}
	fmt.Fprintf(stdout, "%d functions packed into %s (%s)\n", len(m.Functions), *out, signed)
	return 0
}

// keygen writes a new signing key pair.
func keygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("edgeway keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "edgeway-signing.key", "private key file to write (mode 0600); the public key goes to the same name + .pub")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "edgeway keygen: flags only (--out FILE)")
		return 2
	}
	if err := artifact.GenerateKeys(*out, *out+".pub"); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "private key %s (keep it secret: CI signs with it, --sign-key)\npublic key %s (servers check with it, --verify-key)\n", *out, *out+".pub")
	return 0
}
