// Package upstream is the request hot path between the gateway and a
// function's Deno workers.
//
// A Pool holds an immutable Snapshot of a function's ready workers behind an
// atomic pointer. Only the function's lifecycle goroutine publishes snapshots;
// requests read them without locks, claim the least-loaded worker with atomic
// in-flight counters (Acquire), and proxy over one of that worker's persistent
// keep-alive HTTP/1.1 connections on its Unix socket (Worker.Proxy).
//
// The warm path (worker ready, pooled connection, response small enough to
// arrive with its headers) allocates nothing; larger or unframed responses are
// streamed to the client through a pooled body reader, so server-sent events
// arrive event by event and big downloads are never held whole in memory.
package upstream
