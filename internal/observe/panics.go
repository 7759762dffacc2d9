package observe

import (
	"fmt"
	"hash/maphash"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// Where a recovered panic happened, the label of edgeway_panics_total.
const (
	PanicRequest    = "request"     // a client request's handler
	PanicAdmin      = "admin"       // an admin endpoint
	PanicLogFlusher = "log"         // the log flusher
	PanicSupervisor = "supervisor"  // the goroutine owning the set of functions
	PanicWatcher    = "watcher"     // the functions folder watcher
	PanicLifecycle  = "lifecycle"   // a function's manager and its helper goroutines
	PanicWebSocket  = "websocket"   // a spliced WebSocket session (either direction)
	PanicStream     = "stream"      // a worker's response body streamed to a client
	PanicBodyWriter = "body_writer" // the writer copying a request body to a worker
	PanicJWKS       = "jwks"        // the JWKS refresh loop
	PanicSpawner    = "spawner"     // the thread that starts worker processes
	PanicProcess    = "process"     // a worker process's wait and output goroutines
	PanicClientConn = "client_conn" // a client connection's read, write or close, called by fasthttp outside any handler
	PanicAbortWatch = "abort_watch" // a worker's watcher of hung-up clients on pipelined connections
	PanicHook       = "hook"        // a host program's hook or Authenticator (the server package)
)

// panicRepeatEvery is how often a panic site that keeps panicking is
// logged again (a one-line count, not the stack): a request path that
// panics on every call must not flood the log.
const panicRepeatEvery = time.Minute

// maxPanicSites bounds the sites remembered; panics at further sites share
// one entry (their first stack is still logged once per panicRepeatEvery).
const maxPanicSites = 256

type panicSite struct {
	suppressed uint64
	lastLog    time.Time
}

var panicSites = struct {
	sync.Mutex
	seed  maphash.Seed
	sites map[uint64]*panicSite
}{seed: maphash.MakeSeed(), sites: map[uint64]*panicSite{}}

// Recovered counts and logs a panic recovered at where (one of the Panic*
// constants); v is what recover returned. Call it from the deferred
// function that recovered, so the stack still shows the panic. The first
// panic at a code site logs its stack; later ones at the same site are
// counted and logged as one line with the count at most once a minute.
func Recovered(log zerolog.Logger, where string, v any) {
	metrics.GetOrCreateCounter(`edgeway_panics_total{where="` + where + `"}`).Inc()
	var pcs [32]uintptr
	n := runtime.Callers(2, pcs[:])
	var h maphash.Hash
	h.SetSeed(panicSites.seed)
	h.WriteString(where)
	for _, pc := range pcs[:n] {
		var b [8]byte
		for i := range b {
			b[i] = byte(pc >> (8 * i))
		}
		h.Write(b[:])
	}
	key := h.Sum64()
	now := time.Now()
	panicSites.Lock()
	site := panicSites.sites[key]
	if site == nil && len(panicSites.sites) >= maxPanicSites {
		key = 0 // every further site shares one entry
		site = panicSites.sites[key]
	}
	first := site == nil
	if first {
		site = &panicSite{lastLog: now}
		panicSites.sites[key] = site
	} else if now.Sub(site.lastLog) < panicRepeatEvery {
		site.suppressed++
		panicSites.Unlock()
		return
	}
	suppressed := site.suppressed
	site.suppressed, site.lastLog = 0, now
	panicSites.Unlock()
	ev := log.Error().Str("where", where).Str("panic", truncate(fmt.Sprint(v), 1024))
	if first {
		ev.Str("stack", string(debug.Stack())).Msg("recovered from a panic")
		return
	}
	ev.Uint64("repeated", suppressed+1).Msg("recovered from a panic again (stack logged before)")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Guard runs f and recovers a panic in it (counted and logged as at
// where), reporting whether f returned normally. Loops that own state use
// it to survive a bug in one iteration.
func Guard(log zerolog.Logger, where string, f func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			Recovered(log, where, v)
			ok = false
		}
	}()
	f()
	return true
}
