// Package gateway is edgeway's front door: the fasthttp listener, function
// routing, header hygiene, error responses and the fixed admin endpoints.
//
// Function paths are dispatched by a byte-level split of the request URI and
// a lookup in the supervisor's atomically published function map, so the
// data plane allocates nothing per request; fasthttp/router serves only the
// fixed endpoints (GET /, and later /health and /metrics).
//
// For a function route the order is: strip gateway-internal headers, resolve
// the function (404 if unknown), rewrite the path the function sees, set
// X-Forwarded-*, drop hop-by-hop headers, claim a worker and proxy.
package gateway
