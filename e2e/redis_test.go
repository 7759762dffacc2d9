package e2e

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// redisServer is a real redis-server on a loopback port, owned by a test.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedisServer starts redis-server from PATH (CI installs it from apt).
func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not installed (.ci/run installs it from apt)")
	}
	r := &redisServer{t: t, dir: t.TempDir()}
	var err error
	for range 5 { // a free port may be taken before redis binds it
		r.port = freePort(t)
		if err = r.run(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }
func (r *redisServer) url() string  { return "redis://" + r.addr() + "/0" }

// run starts redis-server on r.port and waits until it answers PING (a
// raw RESP exchange: the e2e module has no Redis client).
func (r *redisServer) run() error {
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(eventTimeout)
	for {
		select {
		case <-done:
			return &exec.ExitError{ProcessState: cmd.ProcessState}
		default:
		}
		if redisPing(r.addr()) {
			r.cmd, r.done = cmd, done
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return os.ErrDeadlineExceeded
		}
		time.Sleep(20 * time.Millisecond) // redis prints readiness, but polling PING is simpler and exact
	}
}

func redisPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// stop kills redis-server (an outage, not a clean shutdown) and waits for
// it to exit.
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

// restart starts it again on the same port.
func (r *redisServer) restart() {
	r.t.Helper()
	var err error
	for range 50 {
		if err = r.run(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("redis-server did not restart on %s: %v", r.addr(), err)
}

// metric reads a sample (name with labels, exactly as exposed; or a name
// and its first labels without the closing brace: the sum of the samples
// so starting) from the gateway's /metrics; absent = 0.
func (g *Gateway) metric(key, sample string) float64 {
	g.t.Helper()
	r := g.Do("GET", "/metrics", nil, map[string]string{"Authorization": "Bearer " + key})
	if r.Status != 200 {
		g.t.Fatalf("/metrics: %d %s", r.Status, r.Body)
	}
	var sum float64
	for _, line := range strings.Split(string(r.Body), "\n") {
		if name, v, ok := strings.Cut(line, " "); ok && (name == sample || (!strings.HasSuffix(sample, "}") && strings.HasPrefix(name, sample+","))) {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum
}

// hostPort is the gateway's listen address.
func (g *Gateway) hostPort() string { return strings.TrimPrefix(g.URL, "http://") }

const redisTestKey = "redis-test-internal-key"

// Two instances behind real nginx share one client budget through Redis;
// with Redis killed they keep serving (fail open) and say so once; with
// Redis back the budget is shared again.
func TestRedisSharedRateLimit(t *testing.T) {
	redis := startRedisServer(t)
	const rpm = 10 // one request per 6 s: the test's bursts see no refill
	files := map[string]string{"hello/index.ts": `Deno.serve(() => new Response("hi"));`}
	args := []string{"--rate-limit", strconv.Itoa(rpm), "--rate-limit-store", redis.url(),
		"--rate-limit-store-timeout", "5s", "--rate-limit-store-retry", "100ms", "--internal-key", redisTestKey}
	a := startGateway(t, files, args...)
	b := startGateway(t, files, args...)
	for _, g := range []*Gateway{a, b} {
		g.WaitLog(func(l logLine) bool {
			return l.Msg() == "rate limits shared through the store" && l.Str("store") == redis.url()
		})
	}
	front := startNginxSite(t, a, nginxSite{upstreams: []string{a.hostPort(), b.hostPort()}})

	// burst sends n requests through nginx (all from 127.0.0.1, one
	// client) and counts 200s and 429s.
	burst := func(n int) (ok, limited int, took time.Duration) {
		t.Helper()
		start := time.Now()
		for range n {
			resp, err := client.Get(front.HTTP + "/hello")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				ok++
			case 429:
				if resp.Header.Get("Retry-After") == "" {
					t.Fatal("429 without Retry-After")
				}
				limited++
			default:
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		return ok, limited, time.Since(start)
	}
	// within says allowed is the budget, give or take one request, plus
	// what refilled while the burst ran.
	within := func(phase string, allowed int, took time.Duration) {
		t.Helper()
		most := rpm + 1 + int(took/(time.Minute/rpm))
		if allowed < rpm-1 || allowed > most {
			t.Fatalf("%s: %d requests allowed across both instances in %v, want %d (at most %d)", phase, allowed, took, rpm, most)
		}
	}

	ok, limited, took := burst(3 * rpm)
	within("shared", ok, took)
	if limited == 0 {
		t.Fatal("no 429")
	}
	for name, g := range map[string]*Gateway{"a": a, "b": b} {
		if n := g.metric(redisTestKey, `edgeway_requests_total{function="hello"`); n == 0 {
			t.Fatalf("instance %s served nothing: nginx did not balance", name)
		}
		if up := g.metric(redisTestKey, "edgeway_rate_limit_store_up"); up != 1 {
			t.Fatalf("instance %s: edgeway_rate_limit_store_up = %v", name, up)
		}
	}

	// Outage: the client is over its budget, yet every request passes.
	redis.stop()
	const during = 20
	if ok, _, _ := burst(during); ok != during {
		t.Fatalf("Redis down: %d of %d requests passed, want all (fail open)", ok, during)
	}
	unreachable := func(l logLine) bool { return strings.HasPrefix(l.Msg(), "rate limit store unreachable") }
	var outages, unchecked float64
	for name, g := range map[string]*Gateway{"a": a, "b": b} {
		n := g.metric(redisTestKey, "edgeway_rate_limit_store_outages_total")
		if n == 1 { // the log is buffered: the line may come a moment later
			g.WaitLog(unreachable)
		}
		if lines := g.logs.count(unreachable); float64(lines) != n || lines > 1 {
			t.Fatalf("instance %s: %d outage log lines, %v outages counted; want one line per outage, one outage", name, lines, n)
		}
		if n == 1 && g.metric(redisTestKey, "edgeway_rate_limit_store_up") != 0 {
			t.Fatalf("instance %s: store up during the outage", name)
		}
		outages += n
		unchecked += g.metric(redisTestKey, `edgeway_rate_limit_store_unchecked_total{result="allowed"}`)
	}
	if outages == 0 || unchecked != during {
		t.Fatalf("outages %v, requests allowed unchecked %v; want >= 1 and %d", outages, unchecked, during)
	}

	// Recovery: each instance that saw the outage says so once, then the
	// (empty) Redis shares the budget again.
	redis.restart()
	for _, g := range []*Gateway{a, b} {
		if g.logs.count(unreachable) == 1 {
			g.WaitLog(func(l logLine) bool { return strings.HasPrefix(l.Msg(), "rate limit store reachable again") })
		}
	}
	ok, limited, took = burst(3 * rpm)
	within("after recovery", ok, took)
	if limited == 0 {
		t.Fatal("no 429 after recovery")
	}
	for name, g := range map[string]*Gateway{"a": a, "b": b} {
		if lines := g.logs.count(unreachable); lines > 1 {
			t.Fatalf("instance %s: %d outage lines for one outage", name, lines)
		}
	}
}

// A rolling restart of two instances behind nginx, one at a time, under a
// fixed-rate load, answers every request. While an instance drains,
// /health/ready (on its admin listener, which outlives the drain) is 503.
func TestRollingRestartBehindNginxDropsNothing(t *testing.T) {
	files := map[string]string{
		"hello/index.ts": `Deno.serve(() => new Response("hi"));`,
		"slow/index.ts":  `Deno.serve(async () => { console.log("slow in flight"); await new Promise((r) => setTimeout(r, 3000)); return new Response("slow"); });`,
	}
	admin := []string{"127.0.0.1:" + strconv.Itoa(freePort(t)), "127.0.0.1:" + strconv.Itoa(freePort(t))}
	instance := func(i int, port string) *Gateway {
		args := []string{"--admin-listen", admin[i], "--shutdown-grace", "30s", "--min-workers", "1"}
		if port != "" {
			args = append(args, "--port", port)
		}
		return startGateway(t, files, args...)
	}
	gws := []*Gateway{instance(0, ""), instance(1, "")}
	front := startNginxSite(t, gws[0], nginxSite{upstreams: []string{gws[0].hostPort(), gws[1].hostPort()}})

	// The load: a request every 20 ms, each on its own goroutine (a fixed
	// rate, not a closed loop that would slow down with the gateway).
	var mu sync.Mutex
	var sent, failed int
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			wg.Go(func() {
				resp, err := client.Get(front.HTTP + "/hello")
				mu.Lock()
				defer mu.Unlock()
				sent++
				if err != nil {
					failed++
					failures = append(failures, err.Error())
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed++
					failures = append(failures, resp.Status+" "+resp.Header.Get("X-Edgeway-Error"))
				}
			})
		}
	})
	waitSent := func(n int) {
		t.Helper()
		deadline := time.Now().Add(eventTimeout)
		for {
			mu.Lock()
			s := sent
			mu.Unlock()
			if s >= n || time.Now().After(deadline) {
				return
			}
			time.Sleep(20 * time.Millisecond) // the load's own pace
		}
	}
	waitSent(25)

	for i, g := range gws {
		// A slow request in flight keeps the instance draining.
		slow := make(chan Response, 1)
		go func() { r, _ := g.try("GET", "/slow", nil, nil); slow <- r }()
		g.WaitLog(func(l logLine) bool { return l.Msg() == "slow in flight" })
		port := strconv.Itoa(mustPort(t, g.hostPort()))
		g.Signal(syscall.SIGTERM)
		// Ready goes 503 while the slow request is still in flight (the
		// admin listener closes only after the drain).
		deadline := time.Now().Add(eventTimeout)
		for readyStatus(t, admin[i]) != http.StatusServiceUnavailable {
			if len(slow) > 0 || time.Now().After(deadline) {
				t.Fatalf("instance %d: /health/ready not 503 while draining", i)
			}
			time.Sleep(10 * time.Millisecond) // polling, as a load balancer does
		}
		if r := <-slow; r.Status != 200 {
			t.Fatalf("instance %d: in-flight request during the drain: %d %s", i, r.Status, r.Body)
		}
		if code := g.WaitExit(); code != 0 {
			t.Fatalf("instance %d exited %d", i, code)
		}
		gws[i] = instance(i, port)
		if code := readyStatus(t, admin[i]); code != 200 {
			t.Fatalf("restarted instance %d: /health/ready = %d", i, code)
		}
		// The next instance restarts only once nginx sends this one
		// traffic again: nginx keeps a server that refused a connection
		// out for fail_timeout (10 s), and with both out it answers 502.
		gws[i].WaitLog(func(l logLine) bool { return l.Msg() == "request" && l.Str("path") == "/hello" })
	}
	close(stop)
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d of %d requests failed during the rolling restart: %v", failed, sent, failures)
	}
	t.Logf("%d requests, none failed", sent)
}

func mustPort(t *testing.T, hostPort string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func readyStatus(t *testing.T, adminAddr string) int {
	t.Helper()
	resp, err := client.Get("http://" + adminAddr + "/health/ready")
	if err != nil {
		t.Fatalf("/health/ready on %s: %v", adminAddr, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
