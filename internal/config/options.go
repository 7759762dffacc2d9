package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Options is the server-wide configuration after flags and environment.
type Options struct {
	// sources says where each flag given other than by default came from,
	// for errors found after Parse (see Source).
	sources map[string]string

	Functions     string
	Host          string
	Port          int
	Deno          string
	Timeout       time.Duration
	BootTimeout   time.Duration
	ShutdownGrace time.Duration
	LogLevel      string
	LogFormat     string
	GoMaxProcs    int // 0 = auto
	GoSysmonAwake bool

	// Worker pools (per-function defaults, overridable in function.json).
	MinWorkers               int
	PrewarmPool              int
	PrewarmClasses           int
	PrewarmRefillWait        time.Duration
	MaxWorkers               int
	IdleTimeout              time.Duration
	WorkerMaxDuration        time.Duration
	MaxConcurrency           int
	MaxWebSocketConnections  int
	WebSocketKeepsAlive      bool
	WebSocketDrainTimeout    time.Duration
	WebSocketIdleTimeout     time.Duration
	MaxWebSockets            int
	WebSocketCloseTimeout    time.Duration
	MaxQueue                 int
	QueueTimeout             time.Duration
	MemoryLimitMB            int
	MemoryOverheadMB         int
	CPUTimeSoftLimit         time.Duration
	CPUTimeHardLimit         time.Duration
	ResourceCheckInterval    time.Duration
	HealthCheckInterval      time.Duration
	HealthCheckTimeout       time.Duration
	HealthCheckMaxFailures   int
	EventLoopTimeout         time.Duration
	BackgroundTaskKeepsAlive bool
	BackgroundTaskTimeout    time.Duration

	MaxWorkersTotal int

	// Crash handling.
	CrashLoopThreshold int
	CrashLoopWindow    time.Duration
	CrashLoopCooldown  time.Duration
	BootRetryBackoff   time.Duration

	// Upstream (gateway -> worker) connections.
	UpstreamMaxIdleConns int
	UpstreamDialTimeout  time.Duration
	UpstreamBufferSize   int
	UpstreamBodyBuffer   int
	UpstreamHangupCheck  time.Duration
	WorkerExitWait       time.Duration
	Pipelining           string
	PipelineConns        int
	PipelineDepth        int
	PipelineMaxAge       time.Duration
	PipelineSlow         time.Duration
	PipelineSlowCooldown time.Duration

	// Front door.
	MaxBody           int64
	MaxHeaderBytes    int
	MaxHeaderFields   int
	ReadHeaderTimeout time.Duration
	IdleConnTimeout   time.Duration
	MaxClientConns    int
	ClientReadYield   bool
	WorkerLogLine     int

	// Worker output (lifecycle/logwriter.go, bootstrap's console tags).
	WorkerLogCoalesce    time.Duration
	WorkerRequestContext bool

	// Unread request bodies and slow readers (gateway/settle.go, clientconn.go).
	DiscardBodyMax     int64
	DiscardBodyTimeout time.Duration
	LingeringTimeout   time.Duration
	LingeringTime      time.Duration
	ClientWriteTimeout time.Duration

	// Guards.
	RateLimit        int
	TrustedProxies   []string
	CORSOrigins      []string
	CORSAllowHeaders []string
	BreakerErrorRate float64
	BreakerWindow    int
	BreakerCooldown  time.Duration
	BodyReadTimeout  time.Duration

	// Shared rate limits (internal/ratestore): empty URL = local limiter.
	RateLimitStore        string
	RateLimitStoreTimeout time.Duration
	RateLimitStoreFail    string
	RateLimitStorePrefix  string
	RateLimitStoreRetry   time.Duration

	// ShutdownDelay keeps serving after SIGTERM with /health/ready 503,
	// before the listener closes (gateway.Shutdown).
	ShutdownDelay time.Duration

	// Modes, auth and secrets.
	Watch               string // "true", "false" or "auto" (= on with --dev)
	WatchDebounce       time.Duration
	Dev                 bool
	Auth                string
	APIKeysFile         string
	JWTSecret           string
	JWTPublicKey        string
	JWKSURL             string
	JWKSRefresh         time.Duration
	JWKSMinRefresh      time.Duration
	JWTClockSkew        time.Duration
	JWTIssuer           string
	JWTAudience         string
	JWTTokenFrom        string
	JWTTokenName        string
	JWTCacheSize        int
	PublicFunctions     []string
	EnvPassthrough      []string
	EnvFiles            []string
	Env                 []string
	SupabaseURL         string
	SupabaseDBURL       string
	Region              string
	MaskSecrets         bool
	PermissionProfiles  []string
	FunctionPermissions []string
	DenoFlags           []string
	// What functions of the default profile may touch, as on Supabase
	// (see config/sandboxopts.go and lifecycle/sandbox.go).
	FunctionTmp      string   // TmpAuto, TmpPrivate, TmpShared or TmpOff
	FunctionTmpSetup string   // TmpSetupAuto, TmpSetupThread or TmpSetupExec
	FunctionNpmRead  bool     // read access to Deno's npm cache
	FunctionSys      []string // --allow-sys names
	// The V8 inspector: the first worker's host:port ("" = off), each
	// further worker the next free port.
	Inspect        string
	InspectBrk     bool // wait for a debugger before running any code
	InspectForce   bool // allow it in production and off loopback
	inspectBrkAddr string
	// AllowOutsideSymlinks lets links inside function and shared folders
	// point anywhere (see config/symlinks.go).
	AllowOutsideSymlinks bool

	// Observability and admin.
	InternalKey string
	AdminListen string
	// The admin listener's own connection limits: a slow or idle client
	// there must not hold connections forever either.
	AdminReadHeaderTimeout time.Duration
	AdminIdleConnTimeout   time.Duration
	AdminMaxConns          int
	Pprof                  bool
	AccessLogSample        float64
	LogFlushInterval       time.Duration
	LogBufferSize          int
	LogMaxBuffered         int64

	// Prebuilt artifacts (see internal/artifact and prebuilt.go).
	Prebuilt             string // artifact folder or package served instead of --functions
	VerifyKey            string // ed25519 public key (PEM) the artifact's signature must verify with
	ArtifactMaxBytes     int64  // largest package file
	ArtifactMaxFiles     int    // most files in an artifact
	ArtifactMaxFileBytes int64  // largest file in an artifact
	ArtifactMaxUnpacked  int64  // most bytes of files in an artifact
	StateDir             string // where deployed versions are kept
	DeployKey            string // bearer key of the deploy endpoint; "" = off
	DeployKeep           int    // deployed versions kept (active included)
	DeployReadTimeout    time.Duration
}

// spec describes one flag: its name, default, help text and where it lands.
type spec struct {
	name  string
	def   string
	usage string
	set   func(o *Options, v string) error
	kind  flagKind
	reset func(o *Options) // lists: drop the default before given values
}

type flagKind uint8

const (
	kindValue flagKind = iota // --flag value
	kindBool                  // --flag, --flag=false
	kindList                  // repeatable; the environment form is comma-separated
)

// flagValue records the raw values of one flag for Parse.
type flagValue struct {
	kind   flagKind
	values []string
}

func (v *flagValue) String() string { return "" }
func (v *flagValue) Set(s string) error {
	if v.kind == kindList {
		v.values = append(v.values, s)
	} else {
		v.values = []string{s}
	}
	return nil
}
func (v *flagValue) IsBoolFlag() bool { return v.kind == kindBool }

func listSpec(name, usage string, dst func(*Options) *[]string) spec {
	return listDefaultSpec(name, "", usage, dst)
}

// listDefaultSpec is a list flag with a default (comma-separated), which
// values given as flags or in the environment replace rather than extend.
func listDefaultSpec(name, def, usage string, dst func(*Options) *[]string) spec {
	return spec{name: name, def: def, usage: usage, kind: kindList, reset: func(o *Options) { *dst(o) = nil },
		set: func(o *Options, v string) error {
			if v == "" {
				return nil
			}
			*dst(o) = append(*dst(o), v)
			return nil
		}}
}

func durationSpec(name, def, usage string, dst func(*Options) *time.Duration) spec {
	return spec{name: name, def: def, usage: usage, set: func(o *Options, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration (e.g. 150s, 500ms): %q", v)
		}
		if d < 0 {
			return fmt.Errorf("must not be negative: %q", v)
		}
		*dst(o) = d
		return nil
	}}
}

func intSpec(name, def, usage string, min int, dst func(*Options) *int) spec {
	return spec{name: name, def: def, usage: usage, set: func(o *Options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		if n < min {
			return fmt.Errorf("must be at least %d: %q", min, v)
		}
		*dst(o) = n
		return nil
	}}
}

func stringSpec(name, def, usage string, allowed []string, dst func(*Options) *string) spec {
	return spec{name: name, def: def, usage: usage, set: func(o *Options, v string) error {
		if len(allowed) > 0 && !contains(allowed, v) {
			return fmt.Errorf("must be one of %s: %q", strings.Join(allowed, "|"), v)
		}
		*dst(o) = v
		return nil
	}}
}

// MaxHeaderFieldsLimit is the highest --max-header-fields: Deno 2's parser
// refuses a request with more than 128 header fields, and the gateway adds
// up to 6 (X-Forwarded-For/-Host/-Proto, X-Request-Id, X-Auth-Claims,
// Connection).
const MaxHeaderFieldsLimit = 122

// MaxHeaderBytesLimit is the highest --max-header-bytes: Deno 2's parser
// refuses a request head over 64 KiB, and the gateway adds X-Auth-Claims
// (the claims part of a token of at most secure.MaxTokenLength, 8 KiB) and a
// few hundred bytes of forwarding headers: 48 + 8 + 1.5 KiB < 64 KiB.
const MaxHeaderBytesLimit = 48 << 10

func intRangeSpec(name, def, usage string, min, max int, dst func(*Options) *int) spec {
	s := intSpec(name, def, usage, min, dst)
	set := s.set
	s.set = func(o *Options, v string) error {
		if n, err := strconv.Atoi(v); err == nil && n > max {
			return fmt.Errorf("must be at most %d: %q", max, v)
		}
		return set(o, v)
	}
	return s
}

func boolSpec(name, def, usage string, dst func(*Options) *bool) spec {
	return spec{name: name, def: def, usage: usage, kind: kindBool, set: func(o *Options, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", v)
		}
		*dst(o) = b
		return nil
	}}
}

func floatSpec(name, def, usage string, min, max float64, dst func(*Options) *float64) spec {
	return spec{name: name, def: def, usage: usage, set: func(o *Options, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < min || f > max {
			return fmt.Errorf("must be a number from %g to %g: %q", min, max, v)
		}
		*dst(o) = f
		return nil
	}}
}

func sizeSpec(name, def, usage string, dst func(*Options) *int64) spec {
	return spec{name: name, def: def, usage: usage, set: func(o *Options, v string) error {
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		*dst(o) = n
		return nil
	}}
}

// specs is the single source of truth for flags, defaults and help.
var specs = []spec{
	stringSpec("functions", "./supabase/functions", "functions folder to serve", nil, func(o *Options) *string { return &o.Functions }),
	stringSpec("host", "127.0.0.1", "address to listen on (loopback unless told otherwise)", nil, func(o *Options) *string { return &o.Host }),
	intSpec("port", "3100", "port to listen on (PORT is honoured too)", 0, func(o *Options) *int { return &o.Port }),
	stringSpec("deno", "deno", "Deno executable (name on PATH or a path)", nil, func(o *Options) *string { return &o.Deno }),
	durationSpec("timeout", "150s", "wall-clock limit per request", func(o *Options) *time.Duration { return &o.Timeout }),
	durationSpec("boot-timeout", "15s", "limit from spawning a worker to it being ready", func(o *Options) *time.Duration { return &o.BootTimeout }),
	durationSpec("shutdown-grace", "10s", "time in-flight requests get to finish on SIGTERM/SIGINT", func(o *Options) *time.Duration { return &o.ShutdownGrace }),
	durationSpec("shutdown-delay", "0s", "on SIGTERM/SIGINT, keep accepting and serving this long with /health/ready answering 503, so load balancers that poll it stop sending first; then stop accepting and drain. Counts within --shutdown-grace (0 = close the listener at once)", func(o *Options) *time.Duration { return &o.ShutdownDelay }),
	stringSpec("log-level", "info", "debug|info|warn|error", []string{"debug", "info", "warn", "error"}, func(o *Options) *string { return &o.LogLevel }),
	intSpec("gomaxprocs", "0", "OS threads running Go code; 0 = auto: GOMAXPROCS if set, else half the CPUs (at least 1), leaving the rest to Deno workers", 0, func(o *Options) *int { return &o.GoMaxProcs }),
	boolSpec("go-sysmon-awake", "true", "edgeway serve re-executes itself with GODEBUG=schedtrace=2147483647 (unless GODEBUG sets schedtrace) so Go's sysmon thread never parks: parked, every request after an idle moment wakes it and it polls every 20 µs, about a quarter of the gateway's CPU at a moderate rate", func(o *Options) *bool { return &o.GoSysmonAwake }),
	stringSpec("log-format", "", "json|console (default: console on a terminal, else json)", []string{"", "json", "console"}, func(o *Options) *string { return &o.LogFormat }),

	intSpec("prewarm-pool", "2", "pre-booted Deno processes kept per permission class for cold starts (0 = off)", 0, func(o *Options) *int { return &o.PrewarmPool }),
	durationSpec("prewarm-refill-wait", "1s", "after a cold start from the prewarm pool, the refill's boot waits for that worker's first answer, at most this long (0 = boots at once)", func(o *Options) *time.Duration { return &o.PrewarmRefillWait }),
	intSpec("prewarm-classes", "2", "most permission classes (profile, shared folders, memoryLimitMb, ...) with a prewarm pool; the classes of the most functions win", 1, func(o *Options) *int { return &o.PrewarmClasses }),

	intSpec("min-workers", "0", "default minWorkers: workers kept running per function", 0, func(o *Options) *int { return &o.MinWorkers }),
	intSpec("max-workers", "1", "default maxWorkers: most workers per function", 1, func(o *Options) *int { return &o.MaxWorkers }),
	durationSpec("idle-timeout", "10m", "default idleTimeout: stop a worker idle this long, down to minWorkers (0 = never)", func(o *Options) *time.Duration { return &o.IdleTimeout }),
	durationSpec("worker-max-duration", "0s", "default workerMaxDuration: replace workers older than this (0 = never)", func(o *Options) *time.Duration { return &o.WorkerMaxDuration }),
	intSpec("max-workers-total", "0", "most worker processes of all functions together; at the cap the least recently used idle worker of any function is stopped to make room (0 = half the host's memory at 128 MiB per worker, at least 4; -1 = unlimited)", -1, func(o *Options) *int { return &o.MaxWorkersTotal }),
	intSpec("max-concurrency", "0", "default maxConcurrency: requests in flight per worker (0 = unlimited)", 0, func(o *Options) *int { return &o.MaxConcurrency }),
	intSpec("max-queue", "100", "default maxQueue: requests waiting for a worker slot per function", 0, func(o *Options) *int { return &o.MaxQueue }),
	durationSpec("queue-timeout", "10s", "default queueTimeoutMs: longest wait for a worker slot", func(o *Options) *time.Duration { return &o.QueueTimeout }),
	intSpec("memory-limit-mb", "0", "default memoryLimitMb: V8 heap limit per worker, and with --memory-overhead-mb the limit of its whole memory (0 = Deno's default, no watchdog)", 0, func(o *Options) *int { return &o.MemoryLimitMB }),
	intSpec("memory-overhead-mb", "64", "memory a worker may hold beyond its memoryLimitMb (Deno's runtime, V8's young generation, ArrayBuffers) before the watchdog kills it: 546 WORKER_LIMIT", 0, func(o *Options) *int { return &o.MemoryOverheadMB }),
	durationSpec("cpu-time-soft-limit", "0s", "default cpuTimeSoftLimitMs: CPU time a worker may accumulate after boot before it is retired (new requests go to a fresh worker, in-flight ones finish; 0 = none)", func(o *Options) *time.Duration { return &o.CPUTimeSoftLimit }),
	durationSpec("cpu-time-hard-limit", "0s", "default cpuTimeHardLimitMs: CPU time a worker may accumulate after boot before it is killed (in-flight requests get 546 WORKER_LIMIT; 0 = none)", func(o *Options) *time.Duration { return &o.CPUTimeHardLimit }),
	durationSpec("resource-check-interval", "250ms", "how often each worker's memory and CPU time are read from /proc to enforce memoryLimitMb and the CPU time limits (0 = never)", func(o *Options) *time.Duration { return &o.ResourceCheckInterval }),
	durationSpec("health-check-interval", "0s", "default healthCheckInterval (0 = off)", func(o *Options) *time.Duration { return &o.HealthCheckInterval }),
	durationSpec("health-check-timeout", "5s", "default healthCheckTimeout", func(o *Options) *time.Duration { return &o.HealthCheckTimeout }),
	intSpec("health-check-max-failures", "3", "default healthCheckMaxFailures before a worker is replaced", 1, func(o *Options) *int { return &o.HealthCheckMaxFailures }),
	durationSpec("event-loop-timeout", "2s", "after a request to a worker timed out (504), a worker whose event loop does not answer a ping within this is wedged in synchronous code and is replaced (0 = never check)", func(o *Options) *time.Duration { return &o.EventLoopTimeout }),
	boolSpec("background-task-keeps-alive", "true", "default backgroundTaskKeepsAlive: pending waitUntil tasks keep a worker up", func(o *Options) *bool { return &o.BackgroundTaskKeepsAlive }),
	durationSpec("background-task-timeout", "30s", "default backgroundTaskTimeout after a worker's last response", func(o *Options) *time.Duration { return &o.BackgroundTaskTimeout }),
	intSpec("max-websocket-connections", "100", "default maxWebSocketConnections: WebSocket sessions per worker (0 = unlimited)", 0, func(o *Options) *int { return &o.MaxWebSocketConnections }),
	boolSpec("websocket-keeps-alive", "true", "default websocketKeepsAlive: open WebSockets keep a worker from its idle timeout", func(o *Options) *bool { return &o.WebSocketKeepsAlive }),
	durationSpec("websocket-drain-timeout", "30s", "default websocketDrainTimeout: a recycled or reloaded worker keeps its open WebSockets this long, then closes them with 1001", func(o *Options) *time.Duration { return &o.WebSocketDrainTimeout }),
	durationSpec("websocket-idle-timeout", "0s", "default websocketIdleTimeout: close a WebSocket with no traffic either way for this long with 1001 (0 = never)", func(o *Options) *time.Duration { return &o.WebSocketIdleTimeout }),
	intSpec("max-websockets", "10000", "most WebSocket sessions for the whole gateway; more upgrades get 503 OVERLOADED before the handshake (0 = unlimited)", 0, func(o *Options) *int { return &o.MaxWebSockets }),
	durationSpec("websocket-close-timeout", "2s", "how long a close handshake started by the gateway (shutdown, stop, reload, idle, worker crash) waits for the client's reply", func(o *Options) *time.Duration { return &o.WebSocketCloseTimeout }),

	intSpec("crash-loop-threshold", "5", "crashes within --crash-loop-window that put a function in a crash loop", 1, func(o *Options) *int { return &o.CrashLoopThreshold }),
	durationSpec("crash-loop-window", "30s", "window over which crashes are counted", func(o *Options) *time.Duration { return &o.CrashLoopWindow }),
	durationSpec("boot-retry-backoff", "1s", "after a failed boot, wait this long before starting minWorkers again", func(o *Options) *time.Duration { return &o.BootRetryBackoff }),
	durationSpec("crash-loop-cooldown", "30s", "how long a crash-looping function answers 503 CRASH_LOOP", func(o *Options) *time.Duration { return &o.CrashLoopCooldown }),

	intSpec("upstream-max-idle-conns", "64", "idle keep-alive connections kept per worker", 1, func(o *Options) *int { return &o.UpstreamMaxIdleConns }),
	durationSpec("upstream-dial-timeout", "2s", "limit for connecting to a worker's socket", func(o *Options) *time.Duration { return &o.UpstreamDialTimeout }),
	intSpec("upstream-buffer-size", "16384", "read/write buffer per worker connection; caps response header size", 4096, func(o *Options) *int { return &o.UpstreamBufferSize }),
	intSpec("upstream-body-buffer", "65536", "request and response bodies with a Content-Length up to this many bytes are read whole before they are sent on, head and body in one write (larger or chunked bodies stream; 0 = always stream)", 0, func(o *Options) *int { return &o.UpstreamBodyBuffer }),
	durationSpec("upstream-hangup-check", "1s", "a request waiting this long for its response head checks every this often whether its client hung up, and then closes its worker connection (or, on a pipelined one, tells the worker to abort that request) so the function's req.signal aborts (0 = never)", func(o *Options) *time.Duration { return &o.UpstreamHangupCheck }),

	stringSpec("upstream-pipelining", "auto", "auto|off: pipeline quick requests on a few connections per worker (fewer syscalls, about half Deno's per-request cost); off = one request per connection", []string{"auto", "off"}, func(o *Options) *string { return &o.Pipelining }),
	intSpec("upstream-pipeline-conns", "2", "pipelined connections per worker", 1, func(o *Options) *int { return &o.PipelineConns }),
	intSpec("upstream-pipeline-depth", "32", "most requests outstanding on one pipelined connection", 1, func(o *Options) *int { return &o.PipelineDepth }),
	durationSpec("upstream-pipeline-max-age", "10ms", "never pipeline behind a request outstanding longer than this, nor for functions averaging slower", func(o *Options) *time.Duration { return &o.PipelineMaxAge }),
	durationSpec("upstream-pipeline-slow", "50ms", "a request of a function this slow, when one begun after it has already come back quicker (a slow path, not a stalled machine), stops pipelining it for --upstream-pipeline-slow-cooldown", func(o *Options) *time.Duration { return &o.PipelineSlow }),
	durationSpec("upstream-pipeline-slow-cooldown", "5s", "how long a function is not pipelined after a request slower than --upstream-pipeline-slow", func(o *Options) *time.Duration { return &o.PipelineSlowCooldown }),
	durationSpec("worker-exit-wait", "1s", "how long a failed request waits to learn if its worker died of its memory limit (546 instead of 502)", func(o *Options) *time.Duration { return &o.WorkerExitWait }),

	sizeSpec("max-body", "30MiB", "largest request body (suffixes KiB, MiB, GiB, KB, MB, GB)", func(o *Options) *int64 { return &o.MaxBody }),
	intRangeSpec("max-header-bytes", "16384", "largest request header block; at most 49152, as Deno refuses a request head over 64 KiB and the gateway adds X-Auth-Claims (up to 8 KiB) and forwarding headers", 1024, MaxHeaderBytesLimit, func(o *Options) *int { return &o.MaxHeaderBytes }),
	intRangeSpec("max-header-fields", "100", "most header lines in a request (400 above); at most 122, as Deno refuses more than 128 and the gateway adds up to 6", 1, MaxHeaderFieldsLimit, func(o *Options) *int { return &o.MaxHeaderFields }),
	durationSpec("read-header-timeout", "10s", "limit for a client to send its request headers", func(o *Options) *time.Duration { return &o.ReadHeaderTimeout }),
	durationSpec("idle-conn-timeout", "75s", "idle keep-alive client connections are closed after this", func(o *Options) *time.Duration { return &o.IdleConnTimeout }),
	intSpec("max-client-conns", "10000", "most concurrent client connections", 1, func(o *Options) *int { return &o.MaxClientConns }),
	boolSpec("client-read-yield", "true", "yield to other handlers before reading a keep-alive client's next request: under load it has usually arrived by then, which saves a failed read and a netpoller wake-up per request", func(o *Options) *bool { return &o.ClientReadYield }),
	sizeSpec("discard-body-max", "1MiB", "most bytes of an unread request body read and discarded after an early answer to keep the connection alive; a longer body closes it (with a lingering close)", func(o *Options) *int64 { return &o.DiscardBodyMax }),
	durationSpec("discard-body-timeout", "5s", "longest time spent discarding an unread request body before the connection is closed instead", func(o *Options) *time.Duration { return &o.DiscardBodyTimeout }),
	durationSpec("lingering-timeout", "5s", "lingering close: a connection closed with its request body unread keeps reading and discarding until the client is silent this long (nginx lingering_timeout)", func(o *Options) *time.Duration { return &o.LingeringTimeout }),
	durationSpec("lingering-time", "30s", "lingering close: most time spent reading and discarding before the socket is closed (nginx lingering_time)", func(o *Options) *time.Duration { return &o.LingeringTime }),
	durationSpec("client-write-timeout", "60s", "a write to a client that makes no progress for this long fails and closes the connection, releasing the worker slot (nginx send_timeout; 0 = none)", func(o *Options) *time.Duration { return &o.ClientWriteTimeout }),
	intSpec("rate-limit", "120", "default rpm: requests per minute per client key per function, burst one minute's worth (0 = off)", 0, func(o *Options) *int { return &o.RateLimit }),
	storeURLSpec("rate-limit-store", "shared rate limits for several instances: redis://[user:pass@]host:port/db or rediss:// (TLS); unset = each instance limits on its own", func(o *Options) *string { return &o.RateLimitStore }),
	durationSpec("rate-limit-store-timeout", "100ms", "longest a request waits for the rate limit store (pool, dial, round trip); a slower or failed call starts an outage: the store is bypassed until a background probe reaches it", func(o *Options) *time.Duration { return &o.RateLimitStoreTimeout }),
	stringSpec("rate-limit-store-fail", "open", "while the rate limit store is unreachable: open (allow, unlimited), closed (refuse with 503 RATE_LIMIT_UNAVAILABLE) or local (each instance applies the limit on its own: N instances give a client N budgets, never unlimited; recommended)", []string{"open", "closed", "local"}, func(o *Options) *string { return &o.RateLimitStoreFail }),
	stringSpec("rate-limit-store-prefix", "edgeway:rl:", "prefix of the rate limit store's keys (then function:client-key); instances sharing budgets use the same prefix", nil, func(o *Options) *string { return &o.RateLimitStorePrefix }),
	durationSpec("rate-limit-store-retry", "1s", "how often an unreachable rate limit store is tried again in the background (each try is bounded by this too); also the Retry-After of a 503 when failing closed", func(o *Options) *time.Duration { return &o.RateLimitStoreRetry }),
	listDefaultSpec("trusted-proxies", "127.0.0.0/8,::1", "CIDRs or IPs whose X-Forwarded-For, X-Forwarded-Host and -Proto are believed: nginx on the same machine by default; given values replace the default (none = trust no peer)", func(o *Options) *[]string { return &o.TrustedProxies }),
	listSpec("cors-origins", "origins the gateway allows CORS requests from, answering preflights itself (* for any); unset = functions handle CORS themselves, preflights included (as on Supabase)", func(o *Options) *[]string { return &o.CORSOrigins }),
	listSpec("cors-allow-headers", "with --cors-origins: the Access-Control-Allow-Headers of preflight answers; unset = allow the headers the preflight asks for", func(o *Options) *[]string { return &o.CORSAllowHeaders }),
	floatSpec("breaker-error-rate", "0.5", "default breaker.errorRate: share of failed calls that opens the circuit", 0.01, 1, func(o *Options) *float64 { return &o.BreakerErrorRate }),
	intSpec("breaker-window", "20", "default breaker.errorWindow: calls considered", 1, func(o *Options) *int { return &o.BreakerWindow }),
	durationSpec("breaker-cooldown", "30s", "default breaker.cooldownMs: how long an open circuit refuses", func(o *Options) *time.Duration { return &o.BreakerCooldown }),
	durationSpec("body-read-timeout", "30s", "longest idle gap between request body chunks (408 REQUEST_TIMEOUT)", func(o *Options) *time.Duration { return &o.BodyReadTimeout }),
	{name: "watch", def: "auto", usage: "reload functions when their files change (default: on with --dev); without it SIGHUP reloads", kind: kindBool, set: func(o *Options, v string) error {
		if v == "auto" {
			o.Watch = v
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", v)
		}
		o.Watch = strconv.FormatBool(b)
		return nil
	}},
	durationSpec("watch-debounce", "200ms", "quiet time after a file change before reloading", func(o *Options) *time.Duration { return &o.WatchDebounce }),
	boolSpec("dev", "false", "development mode: Supabase's well-known local JWT secret, keys and URLs when none are given, console logs", func(o *Options) *bool { return &o.Dev }),
	stringSpec("auth", "jwt", "jwt: functions need a valid JWT unless public (production refuses to start without a key); apikey: a key listed in --api-keys-file; none: no verification (e.g. nginx authenticates)", []string{"jwt", "apikey", "none"}, func(o *Options) *string { return &o.Auth }),
	stringSpec("api-keys-file", "", "--auth apikey: file of API keys, one JSON object a line: {\"name\", \"sha256\" (hex SHA-256 of the key), \"claims\"}; production refuses an empty file", nil, func(o *Options) *string { return &o.APIKeysFile }),
	stringSpec("jwt-secret", "", "HS256/384/512 secret (also JWT_SECRET or SUPABASE_JWT_SECRET); production refuses well-known or <32-byte secrets", nil, func(o *Options) *string { return &o.JWTSecret }),
	stringSpec("jwt-public-key", "", "PEM file with an RSA, EC or Ed25519 public key", nil, func(o *Options) *string { return &o.JWTPublicKey }),
	stringSpec("jwks-url", "", "JWKS URL; keys chosen by kid, refreshed in the background and on an unknown kid", nil, func(o *Options) *string { return &o.JWKSURL }),
	durationSpec("jwks-refresh", "10m", "JWKS background refresh period", func(o *Options) *time.Duration { return &o.JWKSRefresh }),
	durationSpec("jwks-min-refresh", "30s", "least time between two JWKS fetches (unknown kids cannot hammer the JWKS host)", func(o *Options) *time.Duration { return &o.JWKSMinRefresh }),
	durationSpec("jwt-clock-skew", "30s", "leeway for exp and nbf", func(o *Options) *time.Duration { return &o.JWTClockSkew }),
	stringSpec("jwt-issuer", "", "required iss claim, when set", nil, func(o *Options) *string { return &o.JWTIssuer }),
	stringSpec("jwt-audience", "", "required aud claim, when set", nil, func(o *Options) *string { return &o.JWTAudience }),
	stringSpec("jwt-token-from", "header", "header|cookie|query: where the token is read", []string{"header", "cookie", "query"}, func(o *Options) *string { return &o.JWTTokenFrom }),
	stringSpec("jwt-token-name", "", "header, cookie or query parameter name (default: Authorization: Bearer for header)", nil, func(o *Options) *string { return &o.JWTTokenName }),
	intSpec("jwt-cache-size", "4096", "verified tokens cached until their exp", 0, func(o *Options) *int { return &o.JWTCacheSize }),
	listSpec("public-functions", "functions callable without a token (repeatable or comma-separated)", func(o *Options) *[]string { return &o.PublicFunctions }),
	listSpec("env-passthrough", "gateway environment variables passed to functions (default: all but edgeway's own settings)", func(o *Options) *[]string { return &o.EnvPassthrough }),
	listSpec("env-file", "extra .env file for every function (repeatable), after <functions>/.env", func(o *Options) *[]string { return &o.EnvFiles }),
	listSpec("env", "KEY=VALUE for every function (repeatable), after --env-file", func(o *Options) *[]string { return &o.Env }),
	stringSpec("supabase-url", "", "SUPABASE_URL given to functions (over the gateway's environment); --dev default http://127.0.0.1:54321, the Supabase CLI's local API", nil, func(o *Options) *string { return &o.SupabaseURL }),
	stringSpec("supabase-db-url", "", "SUPABASE_DB_URL given to functions (over the gateway's environment); --dev default postgresql://postgres:postgres@127.0.0.1:54322/postgres", nil, func(o *Options) *string { return &o.SupabaseDBURL }),
	stringSpec("region", "", "SB_REGION given to functions (Supabase sets the region they run in); unset = the gateway's SB_REGION, else local", nil, func(o *Options) *string { return &o.Region }),
	boolSpec("mask-secrets", "true", "replace secret values with *** in logged worker output", func(o *Options) *bool { return &o.MaskSecrets }),
	boolSpec("allow-outside-symlinks", "false", "allow symbolic links inside function and _ folders that point outside the function's and the shared folders (Deno's read permission follows them)", func(o *Options) *bool { return &o.AllowOutsideSymlinks }),
	listSpec("permission-profile", "custom Deno permission profile name=--allow-x,--allow-y (repeatable)", func(o *Options) *[]string { return &o.PermissionProfiles }),
	listSpec("function-permissions", "name=profile: override a function's permissions (repeatable)", func(o *Options) *[]string { return &o.FunctionPermissions }),
	stringSpec("function-tmp", TmpAuto, "what functions of the default permission profile get as /tmp (read and write, as on Supabase): auto = private per worker (a mount namespace) where the OS allows it, else shared; private = private or refuse to start; shared = the host's /tmp (functions see each other's files); off = none. TMPDIR is always a per-worker folder edgeway creates and removes", []string{TmpAuto, TmpPrivate, TmpShared, TmpOff}, func(o *Options) *string { return &o.FunctionTmp }),
	stringSpec("function-tmp-setup", TmpSetupAuto, "how a worker gets its private /tmp: thread = the gateway's process-starting thread enters a fresh mount namespace, sets it up and forks Deno there (root only: no re-execution of edgeway, about 11-15 ms of CPU less per start); exec = edgeway re-executes itself as a namespace helper that then executes Deno (any user: a user namespace when not root); auto = thread as root where it works, else exec", []string{TmpSetupAuto, TmpSetupThread, TmpSetupExec}, func(o *Options) *string { return &o.FunctionTmpSetup }),
	boolSpec("function-npm-read", "true", "functions of the default permission profile may read Deno's npm cache (DENO_DIR/npm): npm packages read their own files at run time", func(o *Options) *bool { return &o.FunctionNpmRead }),
	{name: "function-sys", def: DefaultFunctionSys, usage: "Deno --allow-sys names given to functions of the default permission profile (npm packages call os.cpus(), os.totalmem() at import; Supabase grants hostname); none = no sys access", set: func(o *Options, v string) error {
		names, err := parseFunctionSys(v)
		o.FunctionSys = names
		return err
	}},
	inspectSpec("inspect", "open the V8 inspector of every worker, the first on host:port (default "+DefaultInspectAddr+"), each further worker on the next free port (logged with its function and worker); only with --dev and on loopback unless --inspect-force; lifts the request timeout, health checks, worker recycling and --event-loop-timeout", func(o *Options) *string { return &o.Inspect }),
	inspectSpec("inspect-brk", "as --inspect, and every worker waits for a debugger before running any code (the boot timeout is lifted too)", func(o *Options) *string { return &o.inspectBrkAddr }),
	boolSpec("inspect-force", "false", "allow --inspect in production mode and on a non-loopback address: whoever reaches the port can run any code in the workers", func(o *Options) *bool { return &o.InspectForce }),
	listSpec("deno-flag", "extra flag for every worker, e.g. --cached-only (repeatable)", func(o *Options) *[]string { return &o.DenoFlags }),
	stringSpec("internal-key", "", "bearer key for /metrics and detailed /health (without it /metrics answers 403); compared in constant time", nil, func(o *Options) *string { return &o.InternalKey }),
	stringSpec("admin-listen", "", "optional separate host:port for /health and /metrics (default: the main listener)", nil, func(o *Options) *string { return &o.AdminListen }),
	durationSpec("admin-read-header-timeout", "10s", "limit for a client of --admin-listen to send its request headers (a deploy upload's body then has --deploy-read-timeout)", func(o *Options) *time.Duration { return &o.AdminReadHeaderTimeout }),
	durationSpec("admin-idle-conn-timeout", "75s", "idle keep-alive connections to --admin-listen are closed after this", func(o *Options) *time.Duration { return &o.AdminIdleConnTimeout }),
	intSpec("admin-max-conns", "128", "most concurrent connections to --admin-listen; further ones are refused", 1, func(o *Options) *int { return &o.AdminMaxConns }),
	boolSpec("pprof", "false", "serve Go's profiles under /debug/pprof/ on --admin-listen (required) to holders of the internal key; never cmdline, which would show the flags and their secrets", func(o *Options) *bool { return &o.Pprof }),
	floatSpec("access-log-sample", "1", "fraction of requests written to the access log (0 = none, 1 = all)", 0, 1, func(o *Options) *float64 { return &o.AccessLogSample }),
	durationSpec("log-flush-interval", "100ms", "how often buffered log lines are written out", func(o *Options) *time.Duration { return &o.LogFlushInterval }),
	intSpec("log-buffer-size", "65536", "log buffer in bytes; a full buffer is written at once", 4096, func(o *Options) *int { return &o.LogBufferSize }),
	sizeSpec("log-max-buffered", "1MiB", "most log bytes held while the output is slow or stuck (nobody reads stderr); further lines are dropped and counted in edgeway_log_dropped_total, so logging never blocks a request", func(o *Options) *int64 { return &o.LogMaxBuffered }),
	intSpec("worker-log-line", "8192", "longest worker log event in bytes (a stdout/stderr line, or the lines gathered into one event: a console call's output, a stack trace); a longer line is cut, a longer event goes on in the next", 256, func(o *Options) *int { return &o.WorkerLogLine }),
	durationSpec("worker-log-coalesce", "50ms", "how long a worker's log event waits for more of its lines after a write (Deno writes an uncaught error's headline, source line and stack in several writes; a pipe read may split a console call's output); 0 = an event ends with its write", func(o *Options) *time.Duration { return &o.WorkerLogCoalesce }),
	boolSpec("worker-request-context", "true", "lines a function prints through console while handling a request carry its request_id (an async context per request: about 1 µs per request for handlers that take the request, measured on a shared 2-core VM; none on the zero-parameter fast path)", func(o *Options) *bool { return &o.WorkerRequestContext }),
	stringSpec("prebuilt", "", "serve an artifact of `edgeway build` (a folder) or `edgeway package` (a file) instead of --functions: every file's sha256 is verified at start and on each reload (SIGHUP), and the first mismatch refuses it", nil, func(o *Options) *string { return &o.Prebuilt }),
	stringSpec("verify-key", "", "ed25519 public key (PEM, from `edgeway keygen`): a --prebuilt artifact must carry a signature of its manifest that verifies with it", nil, func(o *Options) *string { return &o.VerifyKey }),
	sizeSpec("artifact-max-bytes", "256MiB", "largest artifact package accepted (--prebuilt file)", func(o *Options) *int64 { return &o.ArtifactMaxBytes }),
	intSpec("artifact-max-files", "10000", "most files an artifact may list", 1, func(o *Options) *int { return &o.ArtifactMaxFiles }),
	sizeSpec("artifact-max-file-bytes", "64MiB", "largest file in an artifact (manifest.json included)", func(o *Options) *int64 { return &o.ArtifactMaxFileBytes }),
	sizeSpec("artifact-max-unpacked", "1GiB", "most bytes of files an artifact may hold in all", func(o *Options) *int64 { return &o.ArtifactMaxUnpacked }),
	stringSpec("state-dir", "", "folder (created, mode 0700) where deployed versions are kept; the last deployed one is served at start, over --prebuilt and --functions", nil, func(o *Options) *string { return &o.StateDir }),
	stringSpec("deploy-key", "", "bearer key of the deploy endpoint (POST /deploy, GET /deploy, POST /deploy/rollback on --admin-listen, both required, with --state-dir); compared in constant time; unset = no deploy endpoint", nil, func(o *Options) *string { return &o.DeployKey }),
	durationSpec("deploy-read-timeout", "5m", "longest a deploy upload may take to arrive: a stalled upload would hold the one-deploy slot; it is then refused (422)", func(o *Options) *time.Duration { return &o.DeployReadTimeout }),
	intSpec("deploy-keep", "5", "deployed versions kept in --state-dir (the active one included); older ones are deleted, so rollback reaches back this far", 2, func(o *Options) *int { return &o.DeployKeep }),
}

// EnvName is the environment variable that sets a flag: EDGEWAY_<UPPER_SNAKE>.
func EnvName(flagName string) string {
	return "EDGEWAY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Defaults returns the options with every default applied.
func Defaults() Options {
	var o Options
	for _, s := range specs {
		if err := s.set(&o, s.def); err != nil {
			panic(fmt.Sprintf("BUG: default of --%s: %v", s.name, err))
		}
	}
	return o
}

// ErrHelp is returned by Parse when -h/--help was given.
var ErrHelp = flag.ErrHelp

// Parse reads the serve flags from args and fills unset ones from the
// environment (getenv), then from the defaults. Errors name the flag or
// variable at fault.
func Parse(args []string, getenv func(string) string) (Options, error) {
	o := Defaults()
	fs := flag.NewFlagSet("edgeway serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	values := make(map[string]*flagValue, len(specs))
	for _, s := range specs {
		v := &flagValue{kind: s.kind}
		values[s.name] = v
		fs.Var(v, s.name, s.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, ErrHelp
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (flags only; see `edgeway help`)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	o.sources = map[string]string{}
	for _, s := range specs {
		if (given[s.name] || getenv(EnvName(s.name)) != "") && s.reset != nil {
			s.reset(&o)
		}
		if given[s.name] {
			for _, v := range values[s.name].values {
				if err := s.set(&o, v); err != nil {
					return o, fmt.Errorf("flag --%s: %w", s.name, err)
				}
			}
			continue
		}
		env := EnvName(s.name)
		if v := getenv(env); v != "" {
			o.sources[s.name] = "environment " + env
			items := []string{v}
			if s.kind == kindList {
				items = strings.Split(v, ",")
			}
			for _, item := range items {
				if err := s.set(&o, strings.TrimSpace(item)); err != nil {
					return o, fmt.Errorf("environment %s: %w", env, err)
				}
			}
			continue
		}
		if s.name == "port" {
			if v := getenv("PORT"); v != "" {
				if err := s.set(&o, v); err != nil {
					return o, fmt.Errorf("environment PORT: %w", err)
				}
				o.sources[s.name] = "environment PORT"
			}
		}
		if s.name == "jwt-secret" {
			for _, name := range []string{"JWT_SECRET", "SUPABASE_JWT_SECRET"} {
				if v := getenv(name); v != "" {
					o.JWTSecret = v
					o.sources[s.name] = "environment " + name
					break
				}
			}
		}
	}
	if err := resolveInspect(&o); err != nil {
		return o, err
	}
	if o.Pprof && o.AdminListen == "" {
		return o, fmt.Errorf("flag --pprof needs --admin-listen: profiles are never served on the public listener")
	}
	if o.ShutdownDelay > 0 && o.ShutdownDelay >= o.ShutdownGrace {
		return o, fmt.Errorf("%s (%v) must be below %s (%v): the delay counts within the grace", o.Source("shutdown-delay"), o.ShutdownDelay, o.Source("shutdown-grace"), o.ShutdownGrace)
	}
	if err := checkRateLimitStore(&o); err != nil {
		return o, err
	}
	if o.DeployKey != "" && (o.StateDir == "" || o.AdminListen == "") {
		return o, fmt.Errorf("flag --deploy-key needs --state-dir (where versions are kept) and --admin-listen (deploys are never served on the public listener)")
	}
	if o.MinWorkers > o.MaxWorkers {
		return o, fmt.Errorf("flag --min-workers (%d) is above --max-workers (%d)", o.MinWorkers, o.MaxWorkers)
	}
	if o.CPUTimeSoftLimit > 0 && o.CPUTimeHardLimit > 0 && o.CPUTimeSoftLimit > o.CPUTimeHardLimit {
		return o, fmt.Errorf("flag --cpu-time-soft-limit (%v) is above --cpu-time-hard-limit (%v)", o.CPUTimeSoftLimit, o.CPUTimeHardLimit)
	}
	return o, nil
}

// Source names where flag name's value came from, for an error found
// after Parse: "flag --name" when given on the command line or left at its
// default, else the environment variable ("environment EDGEWAY_PORT",
// "environment PORT", "environment JWT_SECRET").
func (o Options) Source(name string) string {
	if src := o.sources[name]; src != "" {
		return src
	}
	return "flag --" + name
}

// PrintHelp writes every flag with its environment variable and default.
func PrintHelp(w io.Writer) {
	for _, s := range specs {
		if title := helpGroupTitle(s.name); title != "" {
			fmt.Fprintf(w, "\n %s:\n", title)
		}
		def := s.def
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(w, "  --%-28s %s\n  %-30s env %s, default %s\n", s.name, s.usage, "", EnvName(s.name), def)
	}
}

// ParseSize reads a byte size such as 1048576, 30MiB or 10MB.
func ParseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s = strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			mult = u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size (e.g. 1048576, 30MiB): %q", v)
	}
	return n * mult, nil
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// PrintMarkdown writes the configuration table the README embeds.
func PrintMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| flag | environment | default | meaning |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, s := range specs {
		def := "`" + s.def + "`"
		if s.def == "" {
			def = "unset" // nothing is set: no value, not a detected one
		}
		fmt.Fprintf(w, "| `--%s` | `%s` | %s | %s |\n", s.name, EnvName(s.name), def, s.usage)
	}
}
