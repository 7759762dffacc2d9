package ratestore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"edgeway.dev/edgeway/internal/observe"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

//go:embed gcra.lua
var gcraScript string

// gcraSHA is the script's SHA-1, as EVALSHA names it.
var gcraSHA = redis.NewScript(gcraScript).Hash()

const (
	// window is the burst, as in the local limiter: one minute's worth.
	window = time.Minute

	// epochUnix is subtracted from Redis's clock in the script so the
	// microsecond counts stay near 2^47, where a double resolves 1/64 µs.
	epochUnix = 1_700_000_000

	// minIdleConns keeps a few connections open so a request seldom dials.
	minIdleConns = 2

	// probeFunction and probeRPM name the probe's own bucket, which no
	// function can share (function names never start with _) and which
	// never fills.
	probeFunction = "_probe"
	probeRPM      = 1 << 40
)

// Options configures a Store.
type Options struct {
	URL string // redis:// or rediss://
	// Timeout bounds one request's store call: pool wait, dial, write and
	// read together. A slower answer counts as a failure.
	Timeout time.Duration
	// FailClosed refuses requests while the store is unreachable; by
	// default they are allowed.
	FailClosed bool
	// FailLocal has each instance decide by its own local limiter while
	// the store is unreachable (Result.Local); it wins over FailClosed.
	FailLocal bool
	// Prefix starts every key (several deployments can share a Redis).
	Prefix string
	// ProbeInterval is how often an unreachable store is tried again, in
	// the background; it also bounds each try.
	ProbeInterval time.Duration
}

// Result is a Store's decision for one request.
type Result struct {
	Allowed bool
	// RetryAfter is when a limited client may try again.
	RetryAfter time.Duration
	// Unchecked is set when the store was not asked or did not answer:
	// Allowed then follows the fail mode.
	Unchecked bool
	// Local (with Unchecked, fail mode local): the caller decides with
	// its own local limiter; Allowed and RetryAfter are unset.
	Local bool
}

// Store is a Redis-backed rate limit shared by every instance using the
// same Redis and prefix. It is safe for concurrent use.
type Store struct {
	client     *redis.Client
	redacted   string // the URL without its password, for logs and /health
	rawURL     string
	timeout    time.Duration
	failClosed bool
	failLocal  bool
	prefix     string
	probeEvery time.Duration
	log        zerolog.Logger

	down      atomic.Bool
	downSince atomic.Int64 // unix nanoseconds

	mu     sync.Mutex // guards closed against wg.Add after Close's Wait
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

// New builds a Store and starts probing it in the background: an
// unreachable Redis at startup is an outage like any other (logged, the
// fail mode applies), not a startup error.
func New(o Options, log zerolog.Logger) (*Store, error) {
	ropt, err := ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("rate limit store %s: %w", Redacted(o.URL), err)
	}
	// The hot path's bound is the context deadline of each call; no
	// retries (a retry would double the wait), no identity round trip.
	ropt.ContextTimeoutEnabled = true
	ropt.MaxRetries = -1
	ropt.DialerRetries = 1
	ropt.PoolTimeout = o.Timeout
	ropt.ReadTimeout = o.Timeout
	ropt.WriteTimeout = o.Timeout
	ropt.DialTimeout = max(o.Timeout, o.ProbeInterval)
	ropt.MinIdleConns = minIdleConns
	ropt.DisableIdentity = true
	setClientLogger(log, o.URL)
	s := &Store{
		client:     redis.NewClient(ropt),
		redacted:   Redacted(o.URL),
		rawURL:     o.URL,
		timeout:    o.Timeout,
		failClosed: o.FailClosed && !o.FailLocal,
		failLocal:  o.FailLocal,
		prefix:     o.Prefix,
		probeEvery: o.ProbeInterval,
		log:        log,
		stop:       make(chan struct{}),
	}
	storeUp.Set(1)
	// Checked once at startup so a Redis that is down from the start is
	// reported without waiting for a request.
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.probeTimeout())
		defer cancel()
		if err := s.client.Ping(ctx).Err(); err != nil {
			s.failed(err)
		}
	})
	return s, nil
}

// URL is the store's URL with its password masked.
func (s *Store) URL() string { return s.redacted }

// Up reports whether the store answered its last call.
func (s *Store) Up() bool { return !s.down.Load() }

// FailClosed reports the fail mode.
func (s *Store) FailClosed() bool { return s.failClosed }

// FailMode is the fail mode's name: open, closed or local.
func (s *Store) FailMode() string {
	switch {
	case s.failLocal:
		return "local"
	case s.failClosed:
		return "closed"
	}
	return "open"
}

// Allow spends one request of key's budget for function at rpm requests
// per minute (burst one minute's worth), in one round trip. It never
// blocks longer than the store's timeout; while the store is unreachable
// it does not call it at all.
func (s *Store) Allow(function string, rpm int, key []byte) Result {
	if s.down.Load() {
		return s.unchecked()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	res, err := s.eval(ctx, function, rpm, key)
	cancel()
	if err != nil {
		s.failed(err)
		return s.unchecked()
	}
	return res
}

// eval runs the script by its SHA, loading it with EVAL when Redis does
// not have it (first use, or after a restart or SCRIPT FLUSH).
func (s *Store) eval(ctx context.Context, function string, rpm int, key []byte) (Result, error) {
	bucket := s.prefix + function + ":" + string(key)
	interval := strconv.FormatFloat(float64(window.Microseconds())/float64(rpm), 'f', -1, 64)
	keys := []string{bucket}
	v, err := s.client.EvalSha(ctx, gcraSHA, keys, interval, window.Microseconds(), epochUnix).Slice()
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		v, err = s.client.Eval(ctx, gcraScript, keys, interval, window.Microseconds(), epochUnix).Slice()
	}
	if err != nil {
		return Result{}, err
	}
	if len(v) != 2 {
		return Result{}, fmt.Errorf("script answered %d values, want 2", len(v))
	}
	allowed, ok1 := v[0].(int64)
	retryUS, ok2 := v[1].(int64)
	if !ok1 || !ok2 {
		return Result{}, errors.New("script answered non-integers")
	}
	if allowed == 1 {
		return Result{Allowed: true}, nil
	}
	return Result{RetryAfter: time.Duration(retryUS) * time.Microsecond}, nil
}

// unchecked decides without the store, by the fail mode.
func (s *Store) unchecked() Result {
	if s.failLocal {
		uncheckedLocal.Inc()
		return Result{Unchecked: true, Local: true}
	}
	if s.failClosed {
		uncheckedRefused.Inc()
		return Result{Unchecked: true, RetryAfter: s.probeEvery}
	}
	uncheckedAllowed.Inc()
	return Result{Unchecked: true, Allowed: true}
}

// failed counts a failed call and, on the first failure of an outage, logs
// it and starts the probe that ends it.
func (s *Store) failed(err error) {
	storeErrors.Inc()
	if !s.down.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return // the client was closed under a call
	}
	s.downSince.Store(time.Now().UnixNano())
	storeUp.Set(0)
	storeOutages.Inc()
	mode := "open: requests are allowed unchecked"
	switch {
	case s.failLocal:
		mode = "local: each instance limits on its own"
	case s.failClosed:
		mode = "closed: requests are refused with 503"
	}
	s.log.Error().Str("store", s.redacted).Str("error", Mask(s.rawURL, err.Error())).
		Dur("timeout", s.timeout).Dur("retry_every", s.probeEvery).
		Msg("rate limit store unreachable; failing " + mode + " until it answers again")
	s.wg.Go(s.probe)
}

// probe pings the store every probeEvery until it answers, then ends the
// outage. A panic in one try is logged and the loop goes on.
func (s *Store) probe() {
	t := time.NewTicker(s.probeEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		var up bool
		observe.Guard(s.log, "rate_limit_store_probe", func() { up = s.ping() })
		if up {
			since := time.Unix(0, s.downSince.Load())
			storeUp.Set(1)
			s.down.Store(false)
			s.log.Info().Str("store", s.redacted).Dur("outage", time.Since(since).Round(time.Millisecond)).
				Msg("rate limit store reachable again; shared limits resume")
			return
		}
	}
}

// ping runs the script as a request would, on a key of its own: a Redis
// that answers but refuses it (a read-only replica, a wrong password) is
// still down, rather than flapping up and down with every request.
func (s *Store) ping() bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.probeTimeout())
	defer cancel()
	_, err := s.eval(ctx, probeFunction, probeRPM, nil)
	return err == nil
}

// probeTimeout bounds one probe: the retry interval, but never less than
// a request's own timeout.
func (s *Store) probeTimeout() time.Duration { return max(s.probeEvery, s.timeout) }

// Close stops the probe and closes the connections.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	err := s.client.Close()
	s.wg.Wait()
	return err
}
