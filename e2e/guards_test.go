package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cristalhq/jwt/v5"
)

// bodyFn logs "hit <path>" and reports how many body bytes it read.
const bodyFn = `Deno.serve(async (req) => {
  console.log("hit " + new URL(req.url).pathname);
  return Response.json({ bytes: (await req.arrayBuffer()).byteLength });
});
`

var loopbackSeq = 10

// fromLoopback returns a client whose connections come from another
// loopback address (127.0.0.x; all of 127/8 is loopback on Linux), which the
// gateway's per-IP guards treat as another client.
func fromLoopback() *http.Client {
	loopbackSeq++
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(loopbackSeq))}}
	return &http.Client{Timeout: 2 * eventTimeout, Transport: &http.Transport{DialContext: d.DialContext}}
}

// syncHitsFromNewIP is syncHits for a rate-limited function: the marker
// request comes from a fresh loopback address, so it has a bucket of its own.
func syncHitsFromNewIP(t *testing.T, g *Gateway, fn string) int {
	t.Helper()
	path := fmt.Sprintf("/__sync%d", syncSeq.Add(1))
	resp, err := fromLoopback().Get(g.URL + "/" + fn + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("sync request to %s: %d", fn, resp.StatusCode)
	}
	g.WaitLog(func(l logLine) bool { return l.Str("function") == fn && l.Msg() == "hit "+path })
	return hitCount(g, fn)
}

// retryAfter returns the Retry-After seconds of r, which must be set.
func retryAfter(t *testing.T, r Response) int {
	t.Helper()
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds ≥ 1", r.Header.Get("Retry-After"))
	}
	return n
}

func TestBodyLimitRefusedBeforeWorker(t *testing.T) {
	g := startGateway(t, map[string]string{
		"small/index.ts":      bodyFn,
		"small/function.json": `{"maxBodyBytes": 1000}`,
		"dflt/index.ts":       bodyFn,
	}, "--max-body", "2KiB")
	post := func(path string, n int) Response {
		return g.Do("POST", path, bytes.NewReader(make([]byte, n)), map[string]string{"Content-Type": "application/octet-stream"})
	}
	if r := post("/small", 1000); r.Status != 200 || r.JSON(t)["bytes"] != float64(1000) {
		t.Fatalf("body at maxBodyBytes: %d %q", r.Status, r.Body)
	}
	expectError(t, post("/small", 1001), 413, "PAYLOAD_TOO_LARGE")
	if r := post("/dflt", 2048); r.Status != 200 || r.JSON(t)["bytes"] != float64(2048) {
		t.Fatalf("body at --max-body: %d %q", r.Status, r.Body)
	}
	expectError(t, post("/dflt", 2049), 413, "PAYLOAD_TOO_LARGE")
	if n := syncHits(t, g, "small", nil); n != 1 {
		t.Errorf("small: %d requests reached the function, want 1", n)
	}
	if n := syncHits(t, g, "dflt", nil); n != 1 {
		t.Errorf("dflt: %d requests reached the function, want 1", n)
	}
}

func TestRateLimitRefusesWithRetryAfterThenRecovers(t *testing.T) {
	g := startGateway(t, map[string]string{
		"rpm2/index.ts":       hitFn,
		"rpm2/function.json":  `{"rpm": 2}`,
		"rpm60/index.ts":      hitFn,
		"rpm60/function.json": `{"rpm": 60}`,
	})
	// rpm 2: a burst of two, then one token every 30 s.
	for i := 0; i < 2; i++ {
		if r := g.Get("/rpm2"); r.Status != 200 {
			t.Fatalf("request %d within the burst: %d %q", i+1, r.Status, r.Body)
		}
	}
	for i := 0; i < 3; i++ {
		r := g.Get("/rpm2")
		expectError(t, r, 429, "RATE_LIMITED")
		if ra := retryAfter(t, r); ra > 30 {
			t.Fatalf("Retry-After %d s for rpm 2, want at most 30", ra)
		}
	}
	if n := syncHitsFromNewIP(t, g, "rpm2"); n != 2 {
		t.Fatalf("rpm2: %d requests reached the function, want 2", n)
	}

	// rpm 60: one token a second, so the Retry-After to wait is 1 s.
	passed := 0
	var refused Response
	for i := 0; i < 1000; i++ {
		r := g.Get("/rpm60")
		if r.Status == 429 {
			refused = r
			break
		}
		if r.Status != 200 {
			t.Fatalf("rpm60: %d %q", r.Status, r.Body)
		}
		passed++
	}
	expectError(t, refused, 429, "RATE_LIMITED")
	if passed < 60 {
		t.Fatalf("refused after %d requests; the burst is 60", passed)
	}
	ra := retryAfter(t, refused)
	if ra != 1 {
		t.Fatalf("Retry-After %d s for rpm 60, want 1", ra)
	}
	time.Sleep(time.Duration(ra) * time.Second) // the wait the gateway asked for
	if r := g.Get("/rpm60"); r.Status != 200 {
		t.Fatalf("after waiting Retry-After: %d %q", r.Status, r.Body)
	}
}

func TestRateLimitBucketsPerTokenSubject(t *testing.T) {
	secret := randomSecret(t)
	hs := hsSigner(t, jwt.HS256, []byte(secret))
	g := startGateway(t, map[string]string{"limited/index.ts": hitFn, "limited/function.json": `{"rpm": 2}`},
		"--auth", "jwt", "--jwt-secret", secret)
	alice := bearer(mint(t, hs, userClaims("alice")))
	bob := bearer(mint(t, hs, userClaims("bob")))
	noSub := userClaims("")
	delete(noSub, "sub")
	anonymous := bearer(mint(t, hs, noSub)) // no sub: keyed by client IP
	expect := func(who string, h map[string]string, status int) {
		t.Helper()
		r := g.Do("GET", "/limited", nil, h)
		if status == 429 {
			expectError(t, r, 429, "RATE_LIMITED")
		} else if r.Status != status {
			t.Fatalf("%s: %d %q, want %d", who, r.Status, r.Body, status)
		}
	}
	expect("alice 1", alice, 200)
	expect("alice 2", alice, 200)
	expect("alice 3", alice, 429)
	// Same IP, other subject: a bucket of its own.
	expect("bob 1", bob, 200)
	expect("bob 2", bob, 200)
	expect("bob 3", bob, 429)
	expect("alice 4", alice, 429)
	// A token without sub falls back to the IP, which neither used.
	expect("no sub 1", anonymous, 200)
	expect("no sub 2", anonymous, 200)
	expect("no sub 3", anonymous, 429)
	if n := syncHits(t, g, "limited", bearer(mint(t, hs, userClaims("sync")))); n != 6 {
		t.Fatalf("%d requests reached the function, want 6", n)
	}
}

// rawExchange writes req on a new connection, half-closes it and returns
// the statuses of every response the gateway wrote before closing.
func rawExchange(t *testing.T, g *Gateway, req string) []int {
	t.Helper()
	var statuses []int
	for _, r := range rawRead(t, strings.TrimPrefix(g.URL, "http://"), req, true) {
		statuses = append(statuses, r.Status)
	}
	return statuses
}

func TestSmugglingProbesNeverReachFunction(t *testing.T) {
	g := startGateway(t, map[string]string{"target/index.ts": hitFn})
	const smuggled = "GET /target/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	probes := []struct {
		name, req string
	}{
		{"Content-Length then Transfer-Encoding", "POST /target HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"Transfer-Encoding then Content-Length", "POST /target HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\n" + smuggled},
		{"Content-Length twice, different", "POST /target HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 46\r\n\r\nhello" + smuggled},
		{"Content-Length twice, same", "POST /target HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
		{"Content-Length with a sign", "POST /target HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello"},
		{"obs-fold Transfer-Encoding with Content-Length", "POST /target HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled},
		{"obs-fold Transfer-Encoding alone", "POST /target HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"obs-fold continuation line", "GET /target HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n"},
		{"Transfer-Encoding xchunked", "POST /target HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello"},
		{"Transfer-Encoding with space before colon", "POST /target HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello"},
		{"Transfer-Encoding list", "POST /target HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled},
		{"Transfer-Encoding in HTTP/1.0", "POST /target HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"bad chunk size", "POST /target HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
		{"bare LF ending a header line", "GET /target HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n"},
		{"bare LF everywhere", "GET /target HTTP/1.1\nHost: x\n\n"},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			for _, st := range rawExchange(t, g, p.req) {
				if st != 400 {
					t.Errorf("answered %d, want only 400 (or a closed connection)", st)
				}
			}
		})
	}
	// The same bytes, well framed, are served: the probes were refused for
	// their framing, and their smuggled tails would have been served too.
	control := "POST /target/ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + smuggled
	if st := rawExchange(t, g, control); len(st) != 2 || st[0] != 200 || st[1] != 200 {
		t.Fatalf("well-framed pipelined control: statuses %v, want [200 200]", st)
	}
	if n := syncHits(t, g, "target", nil); n != 2 {
		t.Fatalf("%d requests reached the function, want only the control's 2", n)
	}
}

func TestCORSAllowlist(t *testing.T) {
	// The function sets its own Access-Control-Allow-Origin: *; the gateway
	// is the authority and narrows it.
	const wideFn = `Deno.serve((req) => {
  console.log("hit " + new URL(req.url).pathname);
  return new Response("ok", { headers: { "access-control-allow-origin": "*" } });
});`
	g := startGateway(t, map[string]string{"site/index.ts": wideFn, "plain/index.ts": hitFn}, "--cors-origins", "https://ok.example")
	preflight := func(origin string) Response {
		return g.Do("OPTIONS", "/site", nil, map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"})
	}
	r := preflight("https://ok.example")
	if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://ok.example" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "authorization") ||
		r.Header.Get("Access-Control-Max-Age") == "" || !strings.Contains(r.Header.Get("Vary"), "Origin") {
		t.Fatalf("preflight from the allowed origin: %d %v", r.Status, r.Header)
	}
	r = preflight("https://evil.example")
	expectError(t, r, 403, "CORS_ORIGIN_NOT_ALLOWED")
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused preflight carries Access-Control-Allow-Origin %q", r.Header.Get("Access-Control-Allow-Origin"))
	}

	r = g.Do("GET", "/site", nil, map[string]string{"Origin": "https://ok.example"})
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://ok.example" || !strings.Contains(r.Header.Get("Vary"), "Origin") {
		t.Fatalf("GET from the allowed origin: %d %v", r.Status, r.Header)
	}
	for _, h := range []map[string]string{{"Origin": "https://evil.example"}, nil} {
		r = g.Do("GET", "/site", nil, h)
		if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(r.Header.Get("Vary"), "Origin") {
			t.Fatalf("GET with origin %v: %d %v, want no Access-Control-Allow-Origin", h, r.Status, r.Header)
		}
	}
	if n := syncHits(t, g, "site", nil); n != 3 {
		t.Fatalf("%d requests reached the function, want the 3 GETs (preflights are answered by the gateway)", n)
	}

	t.Run("without --cors-origins", func(t *testing.T) {
		g := startGateway(t, map[string]string{"plain/index.ts": hitFn})
		r := g.Do("GET", "/plain", nil, map[string]string{"Origin": "https://ok.example"})
		r2 := g.Do("OPTIONS", "/plain", nil, map[string]string{"Origin": "https://ok.example", "Access-Control-Request-Method": "POST"})
		for _, r := range []Response{r, r2} {
			if r.Status != 200 {
				t.Fatalf("%d %q", r.Status, r.Body)
			}
			for k := range r.Header {
				if strings.HasPrefix(k, "Access-Control-") || k == "Vary" {
					t.Errorf("CORS header %s: %v without --cors-origins", k, r.Header[k])
				}
			}
		}
		if r2.JSON(t)["method"] != "OPTIONS" {
			t.Errorf("the preflight did not reach the function: %q", r2.Body)
		}
	})
}

func TestTrustedProxyClientIP(t *testing.T) {
	files := map[string]string{"who/index.ts": hitFn, "lim/index.ts": hitFn, "lim/function.json": `{"rpm": 2}`}
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }

	t.Run("untrusted peer: X-Forwarded-For ignored", func(t *testing.T) {
		g := startGateway(t, files, "--trusted-proxies", "none") // loopback is trusted by default
		r := g.Do("GET", "/who/mark", nil, xff("6.6.6.6"))
		if got := seen(t, r)["x-forwarded-for"]; got != "127.0.0.1" {
			t.Fatalf("the function saw X-Forwarded-For %v, want 127.0.0.1", got)
		}
		access := g.WaitLog(func(l logLine) bool { return l.Msg() == "request" && l.Str("path") == "/who/mark" })
		if access.Str("client_ip") != "127.0.0.1" {
			t.Errorf("access log client_ip %q", access.Str("client_ip"))
		}
		// One bucket for the peer, whatever it claims.
		expectOK(t, g.Do("GET", "/lim", nil, xff("10.0.0.1")))
		expectOK(t, g.Do("GET", "/lim", nil, xff("10.0.0.2")))
		expectError(t, g.Do("GET", "/lim", nil, xff("10.0.0.3")), 429, "RATE_LIMITED")
	})

	t.Run("trusted proxy: right-most untrusted entry", func(t *testing.T) {
		g := startGateway(t, files, "--trusted-proxies", "127.0.0.1/32")
		cases := []struct{ header, want string }{
			{"6.6.6.6, 10.1.2.3", "10.1.2.3"},
			{"6.6.6.6, 10.1.2.3, 127.0.0.1", "10.1.2.3"},
			{"2001:db8::7", "2001:db8::7"},
			{"", "127.0.0.1"},
		}
		for i, c := range cases {
			path := fmt.Sprintf("/who/mark%d", i)
			var h map[string]string
			if c.header != "" {
				h = xff(c.header)
			}
			if got := seen(t, g.Do("GET", path, nil, h))["x-forwarded-for"]; got != c.want {
				t.Errorf("X-Forwarded-For %q: the function saw %v, want %s", c.header, got, c.want)
			}
			access := g.WaitLog(func(l logLine) bool { return l.Msg() == "request" && l.Str("path") == path })
			if access.Str("client_ip") != c.want {
				t.Errorf("X-Forwarded-For %q: access log client_ip %q, want %s", c.header, access.Str("client_ip"), c.want)
			}
		}
		// Buckets follow the resolved client; forged entries to its left
		// do not buy a new one.
		expectOK(t, g.Do("GET", "/lim", nil, xff("10.0.0.1")))
		expectOK(t, g.Do("GET", "/lim", nil, xff("6.6.6.6, 10.0.0.1")))
		expectError(t, g.Do("GET", "/lim", nil, xff("7.7.7.7, 10.0.0.1")), 429, "RATE_LIMITED")
		expectOK(t, g.Do("GET", "/lim", nil, xff("10.0.0.2")))
		expectOK(t, g.Do("GET", "/lim", nil, nil)) // the proxy itself
	})
}

func expectOK(t *testing.T, r Response) {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d %q, want 200", r.Status, r.Body)
	}
}

func TestCircuitBreakerOpensAndHalfOpenProbeCloses(t *testing.T) {
	// The function crashes while the file "fail" exists in its folder.
	g := startGateway(t, map[string]string{
		"flaky/index.ts": `Deno.serve(async (req) => {
  const path = new URL(req.url).pathname;
  console.log("hit " + path);
  let failing = true;
  try { await Deno.stat(new URL("./fail", import.meta.url)); } catch { failing = false; }
  if (failing) Deno.exit(1);
  return new Response("ok " + path);
});`,
		"flaky/fail":          "",
		"flaky/function.json": `{"breaker": {"errorRate": 0.5, "errorWindow": 4, "cooldownMs": 1500}}`,
	}, "--crash-loop-threshold", "100", "--internal-key", internalKey)
	died := func(l logLine) bool { return l.Msg() == "worker died" && l.Str("function") == "flaky" }
	crashes := 0
	crash := func() {
		t.Helper()
		expectError(t, g.Get("/flaky"), 502, "WORKER_ERROR")
		crashes++
		g.WaitLogCount(died, crashes) // the next request meets a fresh worker
	}
	open := func() int {
		t.Helper()
		r := g.Get("/flaky")
		expectError(t, r, 503, "CIRCUIT_OPEN")
		ra := retryAfter(t, r)
		if ra > 2 {
			t.Fatalf("Retry-After %d s for a 1.5 s cooldown", ra)
		}
		return ra
	}

	for i := 0; i < 4; i++ { // the window fills with failures
		crash()
	}
	ra := open()
	open()
	if m := scrape(t, g, ""); m[`edgeway_breaker_state{function="flaky"}`] != 2 {
		t.Fatalf("edgeway_breaker_state = %v, want 2 (open)", m[`edgeway_breaker_state{function="flaky"}`])
	}

	// After the cooldown one probe is let through; it fails, and a single
	// failure reopens the circuit at once (closed, a window of 4 would
	// need more).
	time.Sleep(time.Duration(ra) * time.Second) // the wait the gateway asked for
	crash()
	ra = open()

	// The function heals; after the cooldown the probe succeeds and closes
	// the circuit.
	if err := os.Remove(filepath.Join(g.Dir, "flaky", "fail")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(ra) * time.Second)
	for i := 0; i < 4; i++ {
		if r := g.Get("/flaky"); r.Status != 200 || string(r.Body) != "ok /" {
			t.Fatalf("request %d after the cooldown: %d %q", i+1, r.Status, r.Body)
		}
	}
	if n := syncHits(t, g, "flaky", nil); n != crashes+4 {
		t.Fatalf("%d requests reached the function, want %d: refusals while open must not", n, crashes+4)
	}
	m := scrape(t, g, "")
	want := map[string]float64{
		`edgeway_breaker_state{function="flaky"}`:                     0,
		`edgeway_refused_total{function="flaky",code="CIRCUIT_OPEN"}`: 3,
		`edgeway_refused_total{function="flaky",code="WORKER_ERROR"}`: 5,
		`edgeway_refused_total{function="flaky",code="CRASH_LOOP"}`:   0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

func TestRefusalMetricsMatchWhatWasSent(t *testing.T) {
	secret := randomSecret(t)
	hs := hsSigner(t, jwt.HS256, []byte(secret))
	g := startGateway(t, map[string]string{
		"limited/index.ts":      hitFn,
		"limited/function.json": `{"rpm": 2, "auth": false}`,
		"small/index.ts":        bodyFn,
		"small/function.json":   `{"maxBodyBytes": 10, "auth": false}`,
		"private/index.ts":      hitFn,
	}, "--auth", "jwt", "--jwt-secret", secret, "--internal-key", internalKey)
	for i := 0; i < 5; i++ {
		g.Get("/limited")
	}
	for _, n := range []int{10, 11, 1000} {
		g.Do("POST", "/small", bytes.NewReader(make([]byte, n)), nil)
	}
	expired := userClaims("x")
	expired["exp"] = time.Now().Unix() - 3600
	for _, h := range []map[string]string{nil, bearer("garbage"), bearer(mint(t, hs, expired)), bearer(mint(t, hsSigner(t, jwt.HS256, []byte(randomSecret(t))), userClaims("x")))} {
		expectError(t, g.Do("GET", "/private", nil, h), 401, "UNAUTHORIZED")
	}
	expectOK(t, g.Do("GET", "/private", nil, bearer(mint(t, hs, userClaims("ok")))))

	m := scrape(t, g, "")
	want := map[string]float64{
		`edgeway_refused_total{function="limited",code="RATE_LIMITED"}`:      3,
		`edgeway_rate_limited_total{function="limited"}`:                     3,
		`edgeway_requests_total{function="limited",status="2xx"}`:            2,
		`edgeway_requests_total{function="limited",status="4xx"}`:            3,
		`edgeway_refused_total{function="small",code="PAYLOAD_TOO_LARGE"}`:   2,
		`edgeway_requests_total{function="small",status="2xx"}`:              1,
		`edgeway_requests_total{function="small",status="4xx"}`:              2,
		`edgeway_refused_total{function="private",code="UNAUTHORIZED"}`:      4,
		`edgeway_requests_total{function="private",status="2xx"}`:            1,
		`edgeway_requests_total{function="private",status="4xx"}`:            4,
		`edgeway_refused_total{function="private",code="RATE_LIMITED"}`:      0,
		`edgeway_refused_total{function="limited",code="UNAUTHORIZED"}`:      0,
		`edgeway_refused_total{function="small",code="CIRCUIT_OPEN"}`:        0,
		`edgeway_refused_total{function="private",code="PAYLOAD_TOO_LARGE"}`: 0,
	}
	expectMetrics(t, m, want)
}
