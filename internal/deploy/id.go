package deploy

import (
	"crypto/sha256"
	"encoding/hex"
)

// manifestID names a version: the sha256 of its manifest.json, which lists
// every file's digest.
func manifestID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}
