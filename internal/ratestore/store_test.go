package ratestore

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// syncBuffer is a log sink safe for the store's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) count(sub string) int { return strings.Count(s.String(), sub) }

func newStore(t testing.TB, url string, o Options) (*Store, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	o.URL = url
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second // generous: the machine is busy
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = 50 * time.Millisecond
	}
	if o.Prefix == "" {
		o.Prefix = "edgeway:rl:"
	}
	s, err := New(o, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// waitFor polls cond until it holds or eventTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, eventTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStoreBurstAndRetryAfter(t *testing.T) {
	r := startRedis(t)
	tests := []struct {
		rpm      int
		interval time.Duration
	}{
		{1, time.Minute},
		{7, time.Minute / 7},
		{60, time.Second},
		{120, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rpm%d", tt.rpm), func(t *testing.T) {
			s, _ := newStore(t, r.url(), Options{})
			key := []byte("i:192.0.2.1:" + t.Name())
			start := time.Now()
			allowed := 0
			var last Result
			for range tt.rpm + 1 {
				last = s.Allow("hello", tt.rpm, key)
				if last.Unchecked {
					t.Fatal("store did not answer")
				}
				if last.Allowed {
					allowed++
				}
			}
			elapsed := time.Since(start)
			// Refill during the loop may add one request per interval.
			most := tt.rpm + int(elapsed/tt.interval) + 1
			if allowed < tt.rpm || allowed > most {
				t.Fatalf("rpm %d: %d of %d allowed in %v, want %d..%d", tt.rpm, allowed, tt.rpm+1, elapsed, tt.rpm, most)
			}
			if allowed == tt.rpm+1 {
				return // refilled during a slow loop: nothing more to check
			}
			if last.Allowed || last.RetryAfter <= 0 || last.RetryAfter > tt.interval {
				t.Fatalf("rpm %d: over the burst: %+v, want refused with 0 < retry after <= %v", tt.rpm, last, tt.interval)
			}
		})
	}
}

func TestStoreSharedByInstances(t *testing.T) {
	r := startRedis(t)
	a, _ := newStore(t, r.url(), Options{})
	b, _ := newStore(t, r.url(), Options{})
	const rpm = 10 // interval 6s: no refill during the test's few calls
	key := []byte("s:user-1")
	allowed := 0
	for i := range 2 * rpm {
		s := a
		if i%2 == 1 {
			s = b
		}
		if res := s.Allow("hello", rpm, key); res.Allowed {
			allowed++
		}
	}
	if allowed != rpm {
		t.Fatalf("two instances allowed %d requests together, want the one budget %d", allowed, rpm)
	}
	// Other functions and other clients have budgets of their own.
	if !a.Allow("other", rpm, key).Allowed || !b.Allow("hello", rpm, []byte("s:user-2")).Allowed {
		t.Fatal("a budget leaked into another function's or client's")
	}
	// A different prefix is a different deployment.
	c, _ := newStore(t, r.url(), Options{Prefix: "staging:rl:"})
	if !c.Allow("hello", rpm, key).Allowed {
		t.Fatal("prefix does not separate deployments")
	}
}

func TestStoreKeysExpire(t *testing.T) {
	r := startRedis(t)
	s, _ := newStore(t, r.url(), Options{})
	c := r.client(t)
	ctx := context.Background()
	s.Allow("hello", 60, []byte("i:192.0.2.7")) // one token of 60/min: full again after 1s
	for range 3 {
		s.Allow("hello", 6, []byte("i:192.0.2.8")) // three tokens of 6/min: 30s
	}
	keys, err := c.Keys(ctx, "edgeway:rl:*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %v (%v), want 2", keys, err)
	}
	for key, most := range map[string]time.Duration{
		"edgeway:rl:hello:i:192.0.2.7": time.Second,
		"edgeway:rl:hello:i:192.0.2.8": 30 * time.Second,
	} {
		ttl, err := c.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > most {
			t.Errorf("%s: TTL %v (%v), want 0 < TTL <= %v (when the bucket is full again)", key, ttl, err, most)
		}
	}
	waitFor(t, "the 1s key expires", func() bool { return c.Exists(ctx, "edgeway:rl:hello:i:192.0.2.7").Val() == 0 })
}

func TestStoreReloadsFlushedScript(t *testing.T) {
	r := startRedis(t)
	s, _ := newStore(t, r.url(), Options{})
	if res := s.Allow("hello", 60, []byte("k")); !res.Allowed || res.Unchecked {
		t.Fatalf("first call: %+v", res)
	}
	if err := r.client(t).ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if res := s.Allow("hello", 60, []byte("k")); !res.Allowed || res.Unchecked {
		t.Fatalf("after SCRIPT FLUSH: %+v, want the script loaded again and the call checked", res)
	}
}

func TestStoreOutageFailsOpenAndRecovers(t *testing.T) {
	r := startRedis(t)
	s, logs := newStore(t, r.url(), Options{})
	const rpm = 2
	key := []byte("s:outage")
	s.Allow("hello", rpm, key)
	s.Allow("hello", rpm, key)
	if res := s.Allow("hello", rpm, key); res.Allowed {
		t.Fatalf("over budget allowed while the store is up: %+v\n%s", res, logs)
	}
	errorsBefore, uncheckedBefore := storeErrors.Get(), uncheckedAllowed.Get()

	r.stop()
	for range 50 {
		if res := s.Allow("hello", rpm, key); !res.Allowed || !res.Unchecked {
			t.Fatalf("store down: %+v, want allowed unchecked (fail open)", res)
		}
	}
	if s.Up() || storeUp.Get() != 0 {
		t.Fatal("store reported up while down")
	}
	if got := logs.count("rate limit store unreachable"); got != 1 {
		t.Fatalf("%d outage lines for one outage, want 1:\n%s", got, logs)
	}
	if storeErrors.Get() <= errorsBefore || uncheckedAllowed.Get() < uncheckedBefore+50 {
		t.Fatalf("metrics: errors %d -> %d, unchecked allowed %d -> %d", errorsBefore, storeErrors.Get(), uncheckedBefore, uncheckedAllowed.Get())
	}

	r.restart(t)
	waitFor(t, "store back up", s.Up)
	if got := logs.count("rate limit store reachable again"); got != 1 {
		t.Fatalf("%d recovery lines, want 1:\n%s", got, logs)
	}
	if storeUp.Get() != 1 {
		t.Fatal("edgeway_rate_limit_store_up not 1 after recovery")
	}
	// A fresh Redis: the budget starts over, checked.
	for i := range rpm + 1 {
		res := s.Allow("hello", rpm, key)
		if res.Unchecked || res.Allowed != (i < rpm) {
			t.Fatalf("after recovery, call %d: %+v", i, res)
		}
	}
	if got := logs.count("rate limit store unreachable"); got != 1 {
		t.Fatalf("%d outage lines after recovery, want still 1", got)
	}
}

func TestStoreFailClosed(t *testing.T) {
	r := startRedis(t)
	s, _ := newStore(t, r.url(), Options{FailClosed: true, ProbeInterval: time.Second})
	r.stop()
	res := s.Allow("hello", 60, []byte("k"))
	if res.Allowed || !res.Unchecked || res.RetryAfter != time.Second {
		t.Fatalf("store down, fail closed: %+v, want refused unchecked, retry after the probe interval", res)
	}
}

// Fail mode local: while the store is down every call says so (Local),
// for the caller's own limiter to decide, never allowed unchecked; the
// outage line names the mode. It wins over closed.
func TestStoreFailLocal(t *testing.T) {
	r := startRedis(t)
	s, logs := newStore(t, r.url(), Options{FailLocal: true, FailClosed: true, ProbeInterval: time.Second})
	if s.FailMode() != "local" {
		t.Fatalf("fail mode %q, want local", s.FailMode())
	}
	if res := s.Allow("hello", 60, []byte("k")); res.Unchecked || res.Local || !res.Allowed {
		t.Fatalf("store up: %+v, want checked and allowed", res)
	}
	r.stop()
	before, allowedBefore := uncheckedLocal.Get(), uncheckedAllowed.Get()
	for range 10 {
		if res := s.Allow("hello", 60, []byte("k")); !res.Unchecked || !res.Local || res.Allowed {
			t.Fatalf("store down, fail local: %+v, want unchecked, local, not allowed by the store", res)
		}
	}
	if uncheckedLocal.Get() < before+10 || uncheckedAllowed.Get() != allowedBefore {
		t.Fatalf("unchecked local %d -> %d, allowed %d -> %d", before, uncheckedLocal.Get(), allowedBefore, uncheckedAllowed.Get())
	}
	if logs.count("failing local") != 1 {
		t.Fatalf("outage line does not name the local mode once:\n%s", logs)
	}
}

// A store that accepts and never answers must not hold a request longer
// than the timeout.
func TestStoreTimeoutBoundsAHungRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns sync.WaitGroup
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { <-done; c.Close() }) // reads nothing, answers nothing
		}
	}()
	s, logs := newStore(t, "redis://"+ln.Addr().String()+"/0", Options{Timeout: 100 * time.Millisecond, ProbeInterval: time.Hour})
	results := make(chan Result, 1)
	go func() { results <- s.Allow("hello", 60, []byte("k")) }()
	select {
	case res := <-results:
		if !res.Allowed || !res.Unchecked {
			t.Fatalf("hung store: %+v, want allowed unchecked", res)
		}
	case <-time.After(eventTimeout):
		t.Fatalf("Allow still blocked after %v with a 100ms store timeout", eventTimeout)
	}
	waitFor(t, "outage logged", func() bool { return logs.count("rate limit store unreachable") == 1 })
}

func TestStoreNeverLogsThePassword(t *testing.T) {
	const password = "pw-s3cret-Zq9"
	r := startRedis(t, "--requirepass", "another-one")
	url := "redis://default:" + password + "@" + r.addr() + "/0"
	s, logs := newStore(t, url, Options{})
	if res := s.Allow("hello", 60, []byte("k")); !res.Unchecked {
		t.Fatalf("wrong password answered: %+v", res)
	}
	waitFor(t, "outage logged", func() bool { return logs.count("rate limit store unreachable") == 1 })
	if strings.Contains(logs.String(), password) {
		t.Fatalf("log holds the password:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "default:xxxxx@") || strings.Contains(s.URL(), password) {
		t.Fatalf("store not named with its password masked: %q\n%s", s.URL(), logs)
	}
	// And with the right password it works.
	ok, _ := newStore(t, "redis://default:another-one@"+r.addr()+"/0", Options{})
	if res := ok.Allow("hello", 60, []byte("k")); res.Unchecked || !res.Allowed {
		t.Fatalf("right password: %+v", res)
	}
}
