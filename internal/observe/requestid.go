package observe

import (
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
)

// RequestIDs makes unique request ids without allocating: a random
// per-process prefix and a counter, as hex.
type RequestIDs struct {
	prefix [16]byte // 8 random bytes as hex
	next   atomic.Uint64
}

// NewRequestIDs seeds the prefix from crypto/rand.
func NewRequestIDs() *RequestIDs {
	var r RequestIDs
	var b [8]byte
	rand.Read(b[:])
	hex.Encode(r.prefix[:], b[:])
	return &r
}

// Append appends a new id ("<prefix>-<counter>") to dst.
func (r *RequestIDs) Append(dst []byte) []byte {
	n := r.next.Add(1)
	dst = append(dst, r.prefix[:]...)
	dst = append(dst, '-')
	var buf [16]byte
	i := len(buf)
	for {
		i--
		buf[i] = "0123456789abcdef"[n&15]
		n >>= 4
		if n == 0 {
			break
		}
	}
	return append(dst, buf[i:]...)
}
