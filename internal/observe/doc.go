// Package observe holds what operators see: each function's Prometheus
// metrics (VictoriaMetrics/metrics, one Set per function, created once so
// the hot path only increments atomics), request ids, and the buffered log
// writer that keeps per-request logging off the syscall path.
package observe
