package observe

// metricHelp is the `# HELP` text of each edgeway metric family. A family
// missing here is exposed with its name as help, and
// TestMetricsExposition (e2e) fails: describe new metrics here.
var metricHelp = map[string]string{
	// Per function (label function).
	"edgeway_requests_total":               "Requests answered, by status class (1xx..5xx).",
	"edgeway_request_duration_seconds":     "Time from a request's arrival to its answer's head being sent.",
	"edgeway_request_bytes_total":          "Request body bytes received.",
	"edgeway_response_bytes_total":         "Response body bytes sent.",
	"edgeway_in_flight_requests":           "Requests being served now.",
	"edgeway_rate_limited_total":           "Requests refused with 429 by the per-client rate limit.",
	"edgeway_refused_total":                "Requests the gateway answered itself with an error, by error code.",
	"edgeway_workers":                      "Worker processes, by state (running, starting, draining).",
	"edgeway_worker_spawns_total":          "Worker processes started.",
	"edgeway_cold_starts_total":            "Requests that waited for a worker to boot.",
	"edgeway_cold_start_duration_seconds":  "Time from starting a worker for a waiting request to it being ready, by source (pool: a pre-booted worker, spawn: a fresh one).",
	"edgeway_boot_failures_total":          "Workers that failed to boot.",
	"edgeway_worker_crashes_total":         "Workers that exited unexpectedly.",
	"edgeway_worker_stops_total":           "Workers stopped, by reason.",
	"edgeway_worker_protocol_errors_total": "Malformed lines on a worker's control channel.",
	"edgeway_breaker_state":                "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
	"edgeway_breaker_openings_total":       "Times the circuit breaker opened.",
	"edgeway_websockets_open":              "WebSocket sessions open now.",
	"edgeway_websockets_opened_total":      "WebSocket sessions that completed their handshake.",
	"edgeway_websocket_closed_total":       "WebSocket sessions closed, by close code (1000-1015, 3xxx, 4xxx, other).",
	"edgeway_websocket_bytes_total":        "WebSocket bytes after the handshake, by direction (in: client to worker).",
	"edgeway_websocket_duration_seconds":   "Duration of closed WebSocket sessions.",

	// Gateway-wide.
	"edgeway_prewarm_idle":                       "Pre-booted workers waiting in the prewarm pool (--prewarm-pool).",
	"edgeway_prewarm_hits_total":                 "Cold starts served by a pre-booted worker.",
	"edgeway_prewarm_misses_total":               "Cold starts that spawned fresh, by reason (empty: the class's pool had none; class: the class has no pool; refused: the function cannot run pre-booted).",
	"edgeway_prewarm_refill_duration_seconds":    "Time to boot one pre-booted worker.",
	"edgeway_prewarm_boot_failures_total":        "Pre-booted workers that failed to boot.",
	"edgeway_workers_total_limit":                "Most worker processes of all functions together (--max-workers-total).",
	"edgeway_workers_total_used":                 "Worker processes of all functions now.",
	"edgeway_worker_budget_evictions_total":      "Idle workers stopped to make room under --max-workers-total.",
	"edgeway_worker_budget_refusals_total":       "Requests refused at once with 503 OVERLOADED because --max-workers-total was spent and every worker busy.",
	"edgeway_panics_total":                       "Panics recovered, by where they happened.",
	"edgeway_log_dropped_total":                  "Log lines dropped because the log output did not keep up.",
	"edgeway_accept_fd_exhausted_total":          "Accepts that found no free file descriptor.",
	"edgeway_accept_shed_total":                  "Connections shed while out of file descriptors.",
	"edgeway_client_write_timeouts_total":        "Client connections closed because a write made no progress (--client-write-timeout).",
	"edgeway_client_lingering_closes_total":      "Client connections closed with a lingering close (request body unread).",
	"edgeway_client_bodies_discarded_total":      "Unread request bodies discarded after an early answer, by result (kept_alive, closed).",
	"edgeway_client_poisoned_requests_total":     "Requests parsed after a body left unread (possibly its tail), refused with 400 and the connection closed.",
	"edgeway_client_chunk_framing_refused_total": "Chunked request bodies refused because chunk extensions or trailers between two pieces of data exceeded 4 x --max-header-bytes.",
}
