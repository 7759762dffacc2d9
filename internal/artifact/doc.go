// Package artifact reads, writes and verifies edgeway's prebuilt artifacts:
// a folder (what `edgeway build` writes) or a package (the same as one tar
// file, what `edgeway package` writes) holding manifest.json, an optional
// ed25519 signature of it, and under functions/<name>/ each function's
// bundle and the files it reads at run time.
//
// Everything read here is treated as hostile: the manifest is decoded
// strictly and checked, every file must be listed in it with its size and
// SHA-256, nothing else may be present, and a package is unpacked with
// limits on its size, file count and file sizes, refusing links, devices
// and any path that is not a plain relative one.
package artifact
