package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const internalKey = "test-internal-key-0123456789abcdef"

// promLine matches one Prometheus text-format sample.
var promLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$`)

// scrape reads /metrics and returns samples keyed by name+labels.
func scrape(t *testing.T, g *Gateway, base string) map[string]float64 {
	t.Helper()
	r := g.Do("GET", base+"/metrics", nil, map[string]string{"Authorization": "Bearer " + internalKey})
	if r.Status != 200 {
		t.Fatalf("/metrics: %d %q", r.Status, r.Body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := promLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not Prometheus text: %q", line)
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		out[m[1]+m[2]] = v
	}
	return out
}

// expectMetrics checks scraped samples against want (name{labels} → value).
func expectMetrics(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing metric %s", k)
		} else if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
}

func TestMetricsCountWhatWasSent(t *testing.T) {
	g := startGateway(t, map[string]string{
		"counted/index.ts": `Deno.serve((req) => new Response("x", { status: new URL(req.url).pathname === "/missing" ? 404 : 200 }));`,
		"broken/index.ts":  `Deno.serve(() => new Response("x")`,
	}, "--internal-key", internalKey, "--prewarm-pool", "0") // spawns counted exactly (TestPrewarmServes counts the pool's)
	for i := 0; i < 5; i++ {
		g.Get("/counted")
	}
	for i := 0; i < 3; i++ {
		g.Get("/counted/missing")
	}
	g.Get("/broken")
	if r := g.Get("/metrics"); r.Status != 403 {
		t.Fatalf("/metrics without the key: %d", r.Status)
	}
	if r := g.Do("GET", "/metrics", nil, map[string]string{"Authorization": "Bearer wrong"}); r.Status != 403 {
		t.Fatalf("/metrics with a wrong key: %d", r.Status)
	}
	m := scrape(t, g, "")
	want := map[string]float64{
		`edgeway_requests_total{function="counted",status="2xx"}`:                      5,
		`edgeway_requests_total{function="counted",status="4xx"}`:                      3,
		`edgeway_requests_total{function="broken",status="5xx"}`:                       1,
		`edgeway_refused_total{function="broken",code="BOOT_ERROR"}`:                   1,
		`edgeway_request_duration_seconds_count{function="counted"}`:                   8,
		`edgeway_worker_spawns_total{function="counted"}`:                              1,
		`edgeway_cold_starts_total{function="counted"}`:                                1,
		`edgeway_workers{function="counted",state="running"}`:                          1,
		`edgeway_boot_failures_total{function="broken"}`:                               1,
		`edgeway_in_flight_requests{function="counted"}`:                               0,
		`edgeway_cold_start_duration_seconds_count{function="counted",source="spawn"}`: 1,
		`edgeway_cold_start_duration_seconds_count{function="counted",source="pool"}`:  0,
		`edgeway_worker_crashes_total{function="counted"}`:                             0,
		`edgeway_response_bytes_total{function="counted"}`:                             8,
		`edgeway_worker_stops_total{function="counted",reason="shutdown"}`:             0,
		`edgeway_refused_total{function="counted",code="TIMEOUT"}`:                     0,
		`edgeway_requests_total{function="counted",status="5xx"}`:                      0,
		`edgeway_requests_total{function="broken",status="2xx"}`:                       0,
		`edgeway_worker_stops_total{function="counted",reason="idle"}`:                 0,
		`edgeway_rate_limited_total{function="counted"}`:                               0,
		`edgeway_request_bytes_total{function="counted"}`:                              0,
		`edgeway_breaker_openings_total{function="counted"}`:                           0,
		`edgeway_cold_starts_total{function="broken"}`:                                 0,
		`edgeway_workers{function="broken",state="running"}`:                           0,
		`edgeway_worker_spawns_total{function="broken"}`:                               1,
		`edgeway_refused_total{function="counted",code="WORKER_ERROR"}`:                0,
		`edgeway_refused_total{function="counted",code="OVERLOADED"}`:                  0,
		`edgeway_worker_stops_total{function="counted",reason="crash"}`:                0,
		`edgeway_worker_stops_total{function="counted",reason="health"}`:               0,
		`edgeway_worker_stops_total{function="counted",reason="memory"}`:               0,
		`edgeway_request_duration_seconds_count{function="broken"}`:                    1,
		`edgeway_refused_total{function="counted",code="PAYLOAD_TOO_LARGE"}`:           0,
	}
	expectMetrics(t, m, want)
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("process metrics missing")
	}
}

func TestHealthDocumentAndRequestIDs(t *testing.T) {
	g := startGateway(t, map[string]string{"echo/index.ts": echoURL}, "--internal-key", internalKey)
	r := g.Do("GET", "/echo", nil, map[string]string{"X-Request-Id": "abc-123"})
	if r.Header.Get("X-Request-Id") != "abc-123" || r.JSON(t)["headers"].(map[string]any)["x-request-id"] != "abc-123" {
		t.Fatalf("client request id not passed through: %v", r.Header)
	}
	r = g.Get("/echo?secret=hunter2")
	gen := r.Header.Get("X-Request-Id")
	if gen == "" || r.JSON(t)["headers"].(map[string]any)["x-request-id"] != gen {
		t.Fatalf("generated request id %q not given to the function", gen)
	}
	access := g.WaitLog(func(l logLine) bool { return l.Msg() == "request" && l.Str("request_id") == gen })
	if access.Str("function") != "echo" || access.Str("path") != "/echo" || access.Int("status") != 200 ||
		access.Str("client_ip") != "127.0.0.1" || access.Int("worker_pid") == 0 || access.Str("method") != "GET" {
		t.Fatalf("access log line %v", access)
	}
	if strings.Contains(g.logs.text(), "hunter2") {
		t.Fatal("the query string reached the log")
	}

	if r := g.Get("/health"); strings.TrimSpace(string(r.Body)) != `{"status":"ok"}` {
		t.Fatalf("/health without key: %q", r.Body)
	}
	r = g.Do("GET", "/health", nil, map[string]string{"Authorization": "Bearer " + internalKey})
	var doc struct {
		Status    string
		Functions map[string]struct {
			Running int
			Breaker string
			Latency struct {
				P50, P95, P99 float64
				Samples       int
			} `json:"latencyMs"`
			Workers []struct {
				PID    int
				State  string
				Served int
			}
		}
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("%v: %s", err, r.Body)
	}
	fn := doc.Functions["echo"]
	if doc.Status != "ok" || fn.Running != 1 || len(fn.Workers) != 1 || fn.Workers[0].PID == 0 || fn.Workers[0].Served != 2 || fn.Workers[0].State != "running" {
		t.Fatalf("health document: %s", r.Body)
	}
	if fn.Breaker != "closed" || fn.Latency.Samples != 2 || fn.Latency.P50 <= 0 || fn.Latency.P99 < fn.Latency.P50 {
		t.Fatalf("breaker and latency percentiles: %s", r.Body)
	}
}

func TestReadinessTurns503OnShutdown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	adminAddr := ln.Addr().String()
	ln.Close()
	g := startGateway(t, map[string]string{"slow/index.ts": holdFn}, "--admin-listen", adminAddr, "--internal-key", internalKey)
	admin := "http://" + adminAddr
	get := func(path string) int {
		resp, err := client.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/health/ready"); code != 200 {
		t.Fatalf("ready before shutdown: %d", code)
	}
	if r := g.Get("/health"); r.Status != 404 {
		t.Fatalf("/health on the main listener with --admin-listen: %d", r.Status)
	}
	held := make(chan Response, 1)
	go func() { held <- g.Get("/slow/hold") }()
	g.WaitLog(func(l logLine) bool { return strings.HasPrefix(l.Msg(), "hold started") })
	g.Signal(syscall.SIGTERM)
	g.WaitLog(func(l logLine) bool { return l.Msg() == "shutting down" })
	if code := get("/health/ready"); code != 503 {
		t.Fatalf("ready during shutdown: %d", code)
	}
	release(t, g, "slow")
	if r := <-held; r.Status != 200 {
		t.Fatalf("held request: %d", r.Status)
	}
	g.WaitExit()
}
