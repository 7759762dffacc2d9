package e2e

import (
	"strconv"
	"strings"
	"testing"
)

// --rate-limit-store-fail local: with Redis knocked over, the instance
// limits each client on its own instead of letting every request through.
func TestRedisOutageFallsBackToTheLocalLimiter(t *testing.T) {
	redis := startRedisServer(t)
	const rpm = 10 // one request per 6 s: the test's bursts see little refill
	files := map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`}
	g := startGateway(t, files, "--rate-limit", strconv.Itoa(rpm), "--rate-limit-store", redis.url(),
		"--rate-limit-store-fail", "local", "--rate-limit-store-timeout", "5s",
		"--rate-limit-store-retry", "100ms", "--internal-key", redisTestKey)
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "rate limits shared through the store" && l.Str("fail") == "local"
	})
	get := func() int {
		t.Helper()
		resp, err := client.Get(g.URL + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get(); st != 200 {
		t.Fatalf("store up: status %d", st)
	}

	redis.stop()
	ok, limited := 0, 0
	for range 3 * rpm {
		switch st := get(); st {
		case 200:
			ok++
		case 429:
			limited++
		default:
			t.Fatalf("Redis down, fail local: status %d, want 200 or 429", st)
		}
	}
	// The local bucket holds one minute's worth (rpm), plus what refilled
	// during the burst; failing open would allow all 30.
	if limited == 0 || ok > rpm+2 {
		t.Fatalf("Redis down, fail local: %d allowed, %d limited of %d; want at most about %d allowed", ok, limited, 3*rpm, rpm)
	}
	g.WaitLog(func(l logLine) bool {
		return strings.HasPrefix(l.Msg(), "rate limit store unreachable; failing local")
	})
	if n := g.metric(redisTestKey, `edgeway_rate_limit_store_unchecked_total{result="local"}`); n < float64(3*rpm) {
		t.Fatalf(`edgeway_rate_limit_store_unchecked_total{result="local"} = %v, want >= %d`, n, 3*rpm)
	}
	if n := g.metric(redisTestKey, `edgeway_rate_limit_store_unchecked_total{result="allowed"}`); n != 0 {
		t.Fatalf("requests allowed unchecked while failing local: %v", n)
	}
}
