package secure

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrUnknownAPIKey refuses a key that is in no line of the key file; a
// request without a key is refused with ErrMissing, as without a JWT.
var ErrUnknownAPIKey = errors.New("unknown API key")

// Limits of an API key file. MaxAPIKeyClaims keeps X-Auth-Claims (the
// claims' base64url) within MaxTokenLength, like a JWT's claims part.
const (
	MaxAPIKeys      = 1024
	MaxAPIKeyLine   = 16 << 10
	MaxAPIKeyClaims = MaxTokenLength / 4 * 3
	// MaxAPIKeyLength bounds the presented keys hashed per request; a
	// longer one is unknown without hashing it.
	MaxAPIKeyLength = 1024
)

// APIKeyHeader is the header read first for an API key, as Supabase
// clients send it; Authorization: Bearer is read when it is absent.
const APIKeyHeader = "apikey"

// APIKeys verifies API keys against a file of their SHA-256 hashes (--auth
// apikey). It is safe for concurrent use; Replace swaps the whole key set
// at once (a reload), so a request sees the old set or the new one.
//
// The file holds one JSON object per line; empty lines and lines starting
// with # are skipped:
//
//	{"name": "ci", "sha256": "<64 hex digits: SHA-256 of the key>", "claims": {"role": "service"}}
//
// name (non-empty) and sha256 are required and unique; claims is an
// optional JSON object. Member names match exactly and any other member is
// an error. The claims forwarded to a function are the claims object with
// "sub" set to the name unless the object has a "sub" of its own.
type APIKeys struct {
	set atomic.Pointer[apiKeySet] // nil: no keys
}

// apiKeySet is one version of the key file, never changed once stored.
type apiKeySet struct {
	hashes  [][sha256.Size]byte
	results []Result
}

// Replace makes other's keys the keys k verifies, in one step: requests
// verified before keep their results, requests after see only the new
// keys. other is not to be used afterwards.
func (k *APIKeys) Replace(other *APIKeys) { k.set.Store(other.set.Load()) }

// LoadAPIKeys reads and validates an API key file. Errors name the file,
// and the line when one is at fault.
func LoadAPIKeys(path string) (*APIKeys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("API key file: %w", err)
	}
	defer f.Close()
	return ParseAPIKeys(f, path)
}

// ParseAPIKeys parses an API key file read from r; file labels errors.
func ParseAPIKeys(r io.Reader, file string) (*APIKeys, error) {
	k := &apiKeySet{}
	names := map[string]int{}
	hashes := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxAPIKeyLine)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		e, err := parseAPIKeyLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, line, err)
		}
		if prev, dup := names[e.name]; dup {
			return nil, fmt.Errorf("%s:%d: name %q already used on line %d", file, line, e.name, prev)
		}
		if prev, dup := hashes[e.hash]; dup {
			return nil, fmt.Errorf("%s:%d: same key hash as line %d", file, line, prev)
		}
		if len(k.hashes) == MaxAPIKeys {
			return nil, fmt.Errorf("%s:%d: more than %d keys", file, line, MaxAPIKeys)
		}
		names[e.name], hashes[e.hash] = line, line
		k.hashes = append(k.hashes, e.hash)
		k.results = append(k.results, e.res)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", file, line+1, MaxAPIKeyLine)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	keys := &APIKeys{}
	keys.set.Store(k)
	return keys, nil
}

type apiKeyEntry struct {
	name string
	hash [sha256.Size]byte
	res  Result
}

// parseAPIKeyLine parses one key object.
func parseAPIKeyLine(text []byte) (apiKeyEntry, error) {
	var e apiKeyEntry
	var members map[string]json.RawMessage
	if err := json.Unmarshal(text, &members); err != nil || members == nil {
		return e, errors.New(`not a JSON object (want {"name": ..., "sha256": ..., "claims": {...}})`)
	}
	for m := range members {
		if m != "name" && m != "sha256" && m != "claims" {
			return e, fmt.Errorf("unknown member %q (want name, sha256, claims)", m)
		}
	}
	if err := json.Unmarshal(members["name"], &e.name); err != nil || e.name == "" {
		return e, errors.New("name: want a non-empty string")
	}
	var hexHash string
	if err := json.Unmarshal(members["sha256"], &hexHash); err != nil || len(hexHash) != 2*sha256.Size {
		return e, fmt.Errorf("key %q: sha256: want the 64 hex digits of the key's SHA-256", e.name)
	}
	if _, err := hex.Decode(e.hash[:], []byte(hexHash)); err != nil {
		return e, fmt.Errorf("key %q: sha256: want the 64 hex digits of the key's SHA-256", e.name)
	}
	claims := map[string]json.RawMessage{}
	if raw, ok := members["claims"]; ok {
		if err := json.Unmarshal(raw, &claims); err != nil || claims == nil {
			return e, fmt.Errorf("key %q: claims: want a JSON object", e.name)
		}
	}
	sub := e.name
	if raw, ok := claims["sub"]; ok {
		if err := json.Unmarshal(raw, &sub); err != nil {
			return e, fmt.Errorf("key %q: claims: sub: want a string", e.name)
		}
	} else {
		claims["sub"], _ = json.Marshal(e.name)
	}
	js, err := json.Marshal(claims)
	if err != nil {
		return e, fmt.Errorf("key %q: claims: %w", e.name, err)
	}
	if len(js) > MaxAPIKeyClaims {
		return e, fmt.Errorf("key %q: claims: %d bytes of JSON, at most %d", e.name, len(js), MaxAPIKeyClaims)
	}
	e.res.ClaimsB64 = []byte(base64.RawURLEncoding.EncodeToString(js))
	if sub != "" {
		e.res.Sub = []byte(sub)
	}
	return e, nil
}

// Len is the number of keys.
func (k *APIKeys) Len() int {
	if set := k.set.Load(); set != nil {
		return len(set.hashes)
	}
	return 0
}

// Credentials returns the request's API key: the apikey header, or when
// it is absent the token of Authorization: Bearer. It does not allocate.
func (k *APIKeys) Credentials(ctx *fasthttp.RequestCtx) []byte {
	if v := ctx.Request.Header.Peek(APIKeyHeader); len(v) > 0 {
		return v
	}
	return bearerToken(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))
}

// Verify looks key up by its SHA-256. Every stored hash is compared in
// constant time, so the time taken says nothing about which key, if any,
// matched. The returned Result is shared: treat it as read-only. It does
// not allocate.
func (k *APIKeys) Verify(key []byte, _ time.Time) (*Result, error) {
	if len(key) == 0 {
		return nil, ErrMissing
	}
	if len(key) > MaxAPIKeyLength {
		return nil, ErrUnknownAPIKey
	}
	set := k.set.Load()
	if set == nil {
		return nil, ErrUnknownAPIKey
	}
	sum := sha256.Sum256(key)
	found := -1
	for i := range set.hashes {
		eq := subtle.ConstantTimeCompare(sum[:], set.hashes[i][:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return nil, ErrUnknownAPIKey
	}
	return &set.results[found], nil
}

// HashAPIKey is the hex SHA-256 of key, as the key file stores it.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
