package observe

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// FunctionMetrics are one function's metrics. Every field is created once
// when the function is loaded; updating them never allocates.
type FunctionMetrics struct {
	set  *metrics.Set
	name string

	// Requests by status class (index = status/100, 1..5).
	Requests      [6]*metrics.Counter
	Duration      *metrics.PrometheusHistogram
	RequestBytes  *metrics.Counter
	ResponseBytes *metrics.Counter
	RateLimited   *metrics.Counter
	Refused       map[string]*metrics.Counter // gateway refusals by error code

	Spawns          *metrics.Counter
	ColdStarts      *metrics.Counter
	ColdStartPool   *metrics.PrometheusHistogram // cold starts served by a pre-booted worker
	ColdStartSpawn  *metrics.PrometheusHistogram // cold starts that spawned a fresh worker
	BootFailures    *metrics.Counter
	Crashes         *metrics.Counter
	Stops           map[string]*metrics.Counter // by reason
	BreakerOpenings *metrics.Counter

	WebSocketsOpened  *metrics.Counter
	WebSocketBytesIn  *metrics.Counter // client → worker, after the handshake
	WebSocketBytesOut *metrics.Counter // worker → client
	WebSocketDuration *metrics.PrometheusHistogram
	webSocketsOpen    atomic.Int64
}

// RefusalCodes are the gateway error codes counted per function.
var RefusalCodes = []string{"BOOT_ERROR", "WORKER_ERROR", "TIMEOUT", "CRASH_LOOP", "OVERLOADED", "WORKER_LIMIT", "SHUTTING_DOWN", "PAYLOAD_TOO_LARGE", "REQUEST_TIMEOUT", "UNAUTHORIZED", "RATE_LIMITED", "RATE_LIMIT_UNAVAILABLE", "CIRCUIT_OPEN"}

// StopReasons are the reasons a worker stops, counted per function.
var StopReasons = []string{"idle", "max duration", "crash", "memory", "health", "shutdown", "background task timeout", "reload", "protocol", "wedged", "cpu", "budget"}

// Gauges reads live values at scrape time.
type Gauges struct {
	InFlight func() float64
	Workers  func(state string) float64 // running | starting | draining
	Breaker  func() float64             // 0 closed, 1 half-open, 2 open
}

// NewFunctionMetrics registers the metrics of function name.
func NewFunctionMetrics(name string, g Gauges) *FunctionMetrics {
	s := metrics.NewSet()
	lbl := `{function=` + strconv.Quote(name)
	m := &FunctionMetrics{
		set:             s,
		name:            name,
		Duration:        s.NewPrometheusHistogram(`edgeway_request_duration_seconds` + lbl + `}`),
		RequestBytes:    s.NewCounter(`edgeway_request_bytes_total` + lbl + `}`),
		ResponseBytes:   s.NewCounter(`edgeway_response_bytes_total` + lbl + `}`),
		RateLimited:     s.NewCounter(`edgeway_rate_limited_total` + lbl + `}`),
		Refused:         map[string]*metrics.Counter{},
		Spawns:          s.NewCounter(`edgeway_worker_spawns_total` + lbl + `}`),
		ColdStarts:      s.NewCounter(`edgeway_cold_starts_total` + lbl + `}`),
		ColdStartPool:   s.NewPrometheusHistogram(`edgeway_cold_start_duration_seconds` + lbl + `,source="pool"}`),
		ColdStartSpawn:  s.NewPrometheusHistogram(`edgeway_cold_start_duration_seconds` + lbl + `,source="spawn"}`),
		BootFailures:    s.NewCounter(`edgeway_boot_failures_total` + lbl + `}`),
		Crashes:         s.NewCounter(`edgeway_worker_crashes_total` + lbl + `}`),
		Stops:           map[string]*metrics.Counter{},
		BreakerOpenings: s.NewCounter(`edgeway_breaker_openings_total` + lbl + `}`),

		WebSocketsOpened:  s.NewCounter(`edgeway_websockets_opened_total` + lbl + `}`),
		WebSocketBytesIn:  s.NewCounter(`edgeway_websocket_bytes_total` + lbl + `,direction="in"}`),
		WebSocketBytesOut: s.NewCounter(`edgeway_websocket_bytes_total` + lbl + `,direction="out"}`),
		WebSocketDuration: s.NewPrometheusHistogram(`edgeway_websocket_duration_seconds` + lbl + `}`),
	}
	s.NewGauge(`edgeway_websockets_open`+lbl+`}`, func() float64 { return float64(m.webSocketsOpen.Load()) })
	for class := 1; class <= 5; class++ {
		m.Requests[class] = s.NewCounter(fmt.Sprintf(`edgeway_requests_total%s,status="%dxx"}`, lbl, class))
	}
	for _, code := range RefusalCodes {
		m.Refused[code] = s.NewCounter(fmt.Sprintf(`edgeway_refused_total%s,code=%q}`, lbl, code))
	}
	for _, r := range StopReasons {
		m.Stops[r] = s.NewCounter(fmt.Sprintf(`edgeway_worker_stops_total%s,reason=%q}`, lbl, r))
	}
	if g.InFlight != nil {
		s.NewGauge(`edgeway_in_flight_requests`+lbl+`}`, g.InFlight)
	}
	if g.Workers != nil {
		for _, state := range []string{"running", "starting", "draining"} {
			s.NewGauge(fmt.Sprintf(`edgeway_workers%s,state=%q}`, lbl, state), func() float64 { return g.Workers(state) })
		}
	}
	metrics.RegisterSet(s)
	return m
}

// BreakerGauge exposes the circuit breaker state (0 closed, 1 half-open,
// 2 open) as edgeway_breaker_state.
func (m *FunctionMetrics) BreakerGauge(f func() float64) {
	m.set.NewGauge(`edgeway_breaker_state{function=`+strconv.Quote(m.name)+`}`, f)
}

// Unregister removes the function's metrics (the function was removed).
func (m *FunctionMetrics) Unregister() { metrics.UnregisterSet(m.set, true) }

// ObserveRequest counts one finished request.
func (m *FunctionMetrics) ObserveRequest(status int, elapsed time.Duration, reqBytes, respBytes int) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 5
	}
	m.Requests[class].Inc()
	m.Duration.Update(elapsed.Seconds())
	if reqBytes > 0 {
		m.RequestBytes.Add(reqBytes)
	}
	if respBytes > 0 {
		m.ResponseBytes.Add(respBytes)
	}
}

// Refuse counts a gateway refusal by its error code.
func (m *FunctionMetrics) Refuse(code string) {
	if c := m.Refused[code]; c != nil {
		c.Inc()
	}
}

// Stopped counts a worker stop by reason.
func (m *FunctionMetrics) Stopped(reason string) {
	if c := m.Stops[reason]; c != nil {
		c.Inc()
	}
}

// WebSocketOpened counts a session that completed its handshake.
func (m *FunctionMetrics) WebSocketOpened() {
	m.WebSocketsOpened.Inc()
	m.webSocketsOpen.Add(1)
}

// WebSocketClosed counts a finished session by close code.
func (m *FunctionMetrics) WebSocketClosed(code int, d time.Duration) {
	m.webSocketsOpen.Add(-1)
	m.WebSocketDuration.Update(d.Seconds())
	m.set.GetOrCreateCounter(`edgeway_websocket_closed_total{function=` + strconv.Quote(m.name) + `,code="` + closeCodeLabel(code) + `"}`).Inc()
}

// closeCodeLabel bounds the label's values: clients choose codes freely
// in 3000–4999, which would otherwise make one series per code.
func closeCodeLabel(code int) string {
	switch {
	case code >= 1000 && code <= 1015:
		return strconv.Itoa(code)
	case code >= 3000 && code <= 3999:
		return "3xxx"
	case code >= 4000 && code <= 4999:
		return "4xxx"
	}
	return "other"
}

// ColdStart is the cold-start histogram of source ("pool" or "spawn").
func (m *FunctionMetrics) ColdStart(source string) *metrics.PrometheusHistogram {
	if source == "pool" {
		return m.ColdStartPool
	}
	return m.ColdStartSpawn
}
