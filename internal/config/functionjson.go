package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"
)

// FunctionConfig is the effective per-function configuration: the server
// defaults with <function>/function.json applied on top.
type FunctionConfig struct {
	MinWorkers               int
	MaxWorkers               int
	EagerSpawn               bool
	MaxConcurrency           int // 0 = unlimited
	MaxQueue                 int
	QueueTimeout             time.Duration
	IdleTimeout              time.Duration // 0 = never
	WorkerMaxDuration        time.Duration // 0 = never
	MemoryLimitMB            int           // 0 = Deno's default
	CPUTimeSoftLimit         time.Duration // accumulated CPU per worker before it is retired (0 = none)
	CPUTimeHardLimit         time.Duration // accumulated CPU per worker before it is killed (0 = none)
	Timeout                  time.Duration
	HealthCheckInterval      time.Duration // 0 = off
	HealthCheckTimeout       time.Duration
	HealthCheckMaxFailures   int
	BackgroundTaskKeepsAlive bool
	BackgroundTaskTimeout    time.Duration
	MaxWebSockets            int           // WebSocket sessions per worker (0 = unlimited)
	WebSocketKeepsAlive      bool          // open WebSockets keep a worker from its idle timeout
	WebSocketDrainTimeout    time.Duration // how long a stopping worker keeps its WebSockets
	WebSocketIdleTimeout     time.Duration // close a WebSocket silent this long (0 = never)

	Public      bool     // no token needed ("auth": false, verify_jwt = false, --public-functions)
	Permissions []string // a profile name or Deno permission flags
	// PermissionsFrom names where Permissions was set (the function.json, or
	// flag --function-permissions), for errors; empty for the default.
	PermissionsFrom string
	RPM             int // requests per minute per client (0 = no limit)
	MaxBodyBytes    int64
	Breaker         BreakerConfig
}

// BreakerConfig is a function's circuit breaker.
type BreakerConfig struct {
	ErrorRate float64       // open when at least this share of the window failed
	Window    int           // calls considered
	Cooldown  time.Duration // open this long, then one probe
}

// stringOrList is a JSON string or array of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return &json.UnmarshalTypeError{Value: "value", Type: reflectStringOrList, Field: "permissions"}
	}
	*s = list
	return nil
}

type breakerFile struct {
	ErrorRate   *float64 `json:"errorRate"`
	ErrorWindow *int     `json:"errorWindow"`
	CooldownMs  *int     `json:"cooldownMs"`
}

// functionFile mirrors function.json. Pointers tell "absent" from zero.
// Durations are milliseconds, as in the peers' manifests.
type functionFile struct {
	// Schema is the "$schema" an editor reads (config/function.schema.json);
	// edgeway ignores it.
	Schema *string `json:"$schema"`

	MinWorkers               *int  `json:"minWorkers"`
	MaxWorkers               *int  `json:"maxWorkers"`
	EagerSpawn               *bool `json:"eagerSpawn"`
	MaxConcurrency           *int  `json:"maxConcurrency"`
	MaxQueue                 *int  `json:"maxQueue"`
	QueueTimeoutMs           *int  `json:"queueTimeoutMs"`
	IdleTimeout              *int  `json:"idleTimeout"`
	WorkerMaxDuration        *int  `json:"workerMaxDuration"`
	MemoryLimitMb            *int  `json:"memoryLimitMb"`
	CPUTimeSoftLimitMs       *int  `json:"cpuTimeSoftLimitMs"`
	CPUTimeHardLimitMs       *int  `json:"cpuTimeHardLimitMs"`
	TimeoutMs                *int  `json:"timeoutMs"`
	HealthCheckInterval      *int  `json:"healthCheckInterval"`
	HealthCheckTimeout       *int  `json:"healthCheckTimeout"`
	HealthCheckMaxFailures   *int  `json:"healthCheckMaxFailures"`
	BackgroundTaskKeepsAlive *bool `json:"backgroundTaskKeepsAlive"`
	BackgroundTaskTimeout    *int  `json:"backgroundTaskTimeout"`
	MaxWebSocketConnections  *int  `json:"maxWebSocketConnections"`
	WebsocketKeepsAlive      *bool `json:"websocketKeepsAlive"`
	WebsocketDrainTimeout    *int  `json:"websocketDrainTimeout"`
	WebsocketIdleTimeout     *int  `json:"websocketIdleTimeout"`

	Auth         *bool        `json:"auth"`
	Permissions  stringOrList `json:"permissions"`
	RPM          *int         `json:"rpm"`
	MaxBodyBytes *int64       `json:"maxBodyBytes"`
	Breaker      *breakerFile `json:"breaker"`
}

// DefaultFunctionConfig is the per-function configuration implied by o.
func DefaultFunctionConfig(o Options) FunctionConfig {
	return FunctionConfig{
		MinWorkers:               o.MinWorkers,
		MaxWorkers:               o.MaxWorkers,
		MaxConcurrency:           o.MaxConcurrency,
		MaxQueue:                 o.MaxQueue,
		QueueTimeout:             o.QueueTimeout,
		IdleTimeout:              o.IdleTimeout,
		WorkerMaxDuration:        o.WorkerMaxDuration,
		MemoryLimitMB:            o.MemoryLimitMB,
		CPUTimeSoftLimit:         o.CPUTimeSoftLimit,
		CPUTimeHardLimit:         o.CPUTimeHardLimit,
		Timeout:                  o.Timeout,
		HealthCheckInterval:      o.HealthCheckInterval,
		HealthCheckTimeout:       o.HealthCheckTimeout,
		HealthCheckMaxFailures:   o.HealthCheckMaxFailures,
		BackgroundTaskKeepsAlive: o.BackgroundTaskKeepsAlive,
		BackgroundTaskTimeout:    o.BackgroundTaskTimeout,
		MaxWebSockets:            o.MaxWebSocketConnections,
		WebSocketKeepsAlive:      o.WebSocketKeepsAlive,
		WebSocketDrainTimeout:    o.WebSocketDrainTimeout,
		WebSocketIdleTimeout:     o.WebSocketIdleTimeout,
		RPM:                      o.RateLimit,
		MaxBodyBytes:             o.MaxBody,
		Breaker:                  BreakerConfig{ErrorRate: o.BreakerErrorRate, Window: o.BreakerWindow, Cooldown: o.BreakerCooldown},
	}
}

// LoadFunctionConfig applies the function.json at path (if it exists) to
// base. Unknown fields, wrong types and out-of-range values are errors that
// name the file and the field.
func LoadFunctionConfig(path string, base FunctionConfig) (FunctionConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return base, nil
	}
	if err != nil {
		return base, fmt.Errorf("%s: %w", path, err)
	}
	return parseFunctionConfig(path, data, base)
}

// parseFunctionConfig applies a function.json's content to base; path
// names it in errors.
func parseFunctionConfig(path string, data []byte, base FunctionConfig) (FunctionConfig, error) {
	var f functionFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return base, fmt.Errorf("%s: %s", path, describeJSONError(err))
	}
	if dec.More() {
		return base, fmt.Errorf("%s: unexpected data after the JSON object", path)
	}
	c := base
	type intField struct {
		name string
		src  *int
		min  int
		dst  *int
	}
	for _, fld := range []intField{
		{"minWorkers", f.MinWorkers, 0, &c.MinWorkers},
		{"maxWorkers", f.MaxWorkers, 1, &c.MaxWorkers},
		{"maxConcurrency", f.MaxConcurrency, 0, &c.MaxConcurrency},
		{"maxQueue", f.MaxQueue, 0, &c.MaxQueue},
		{"memoryLimitMb", f.MemoryLimitMb, 0, &c.MemoryLimitMB},
		{"healthCheckMaxFailures", f.HealthCheckMaxFailures, 1, &c.HealthCheckMaxFailures},
		{"maxWebSocketConnections", f.MaxWebSocketConnections, 0, &c.MaxWebSockets},
	} {
		if fld.src == nil {
			continue
		}
		if *fld.src < fld.min {
			return base, fmt.Errorf("%s: field %q must be at least %d, got %d", path, fld.name, fld.min, *fld.src)
		}
		*fld.dst = *fld.src
	}
	type msField struct {
		name string
		src  *int
		dst  *time.Duration
	}
	for _, fld := range []msField{
		{"queueTimeoutMs", f.QueueTimeoutMs, &c.QueueTimeout},
		{"idleTimeout", f.IdleTimeout, &c.IdleTimeout},
		{"workerMaxDuration", f.WorkerMaxDuration, &c.WorkerMaxDuration},
		{"timeoutMs", f.TimeoutMs, &c.Timeout},
		{"cpuTimeSoftLimitMs", f.CPUTimeSoftLimitMs, &c.CPUTimeSoftLimit},
		{"cpuTimeHardLimitMs", f.CPUTimeHardLimitMs, &c.CPUTimeHardLimit},
		{"healthCheckInterval", f.HealthCheckInterval, &c.HealthCheckInterval},
		{"healthCheckTimeout", f.HealthCheckTimeout, &c.HealthCheckTimeout},
		{"backgroundTaskTimeout", f.BackgroundTaskTimeout, &c.BackgroundTaskTimeout},
		{"websocketDrainTimeout", f.WebsocketDrainTimeout, &c.WebSocketDrainTimeout},
		{"websocketIdleTimeout", f.WebsocketIdleTimeout, &c.WebSocketIdleTimeout},
	} {
		if fld.src == nil {
			continue
		}
		if *fld.src < 0 {
			return base, fmt.Errorf("%s: field %q must not be negative, got %d", path, fld.name, *fld.src)
		}
		*fld.dst = time.Duration(*fld.src) * time.Millisecond
	}
	if f.EagerSpawn != nil {
		c.EagerSpawn = *f.EagerSpawn
	}
	if f.BackgroundTaskKeepsAlive != nil {
		c.BackgroundTaskKeepsAlive = *f.BackgroundTaskKeepsAlive
	}
	if f.WebsocketKeepsAlive != nil {
		c.WebSocketKeepsAlive = *f.WebsocketKeepsAlive
	}
	if f.Auth != nil {
		c.Public = !*f.Auth
	}
	if f.Permissions != nil {
		if len(f.Permissions) == 0 {
			return base, fmt.Errorf("%s: field \"permissions\" must name a profile or list flags", path)
		}
		c.Permissions = f.Permissions
		c.PermissionsFrom = path
	}
	if f.RPM != nil {
		if *f.RPM < 0 {
			return base, fmt.Errorf("%s: field \"rpm\" must not be negative", path)
		}
		c.RPM = *f.RPM
	}
	if f.MaxBodyBytes != nil {
		if *f.MaxBodyBytes <= 0 {
			return base, fmt.Errorf("%s: field \"maxBodyBytes\" must be positive", path)
		}
		c.MaxBodyBytes = *f.MaxBodyBytes
	}
	if b := f.Breaker; b != nil {
		if b.ErrorRate != nil {
			if *b.ErrorRate <= 0 || *b.ErrorRate > 1 {
				return base, fmt.Errorf("%s: field \"breaker.errorRate\" must be in (0, 1]", path)
			}
			c.Breaker.ErrorRate = *b.ErrorRate
		}
		if b.ErrorWindow != nil {
			if *b.ErrorWindow < 1 {
				return base, fmt.Errorf("%s: field \"breaker.errorWindow\" must be at least 1", path)
			}
			c.Breaker.Window = *b.ErrorWindow
		}
		if b.CooldownMs != nil {
			if *b.CooldownMs < 1 {
				return base, fmt.Errorf("%s: field \"breaker.cooldownMs\" must be positive", path)
			}
			c.Breaker.Cooldown = time.Duration(*b.CooldownMs) * time.Millisecond
		}
	}
	if c.MinWorkers > c.MaxWorkers {
		return base, fmt.Errorf("%s: field \"minWorkers\" (%d) is above \"maxWorkers\" (%d)", path, c.MinWorkers, c.MaxWorkers)
	}
	if c.Timeout <= 0 {
		return base, fmt.Errorf("%s: field \"timeoutMs\" must be positive", path)
	}
	if c.CPUTimeSoftLimit > 0 && c.CPUTimeHardLimit > 0 && c.CPUTimeSoftLimit > c.CPUTimeHardLimit {
		return base, fmt.Errorf("%s: field \"cpuTimeSoftLimitMs\" (%v) is above \"cpuTimeHardLimitMs\" (%v)", path, c.CPUTimeSoftLimit, c.CPUTimeHardLimit)
	}
	return c, nil
}

// describeJSONError rewrites encoding/json errors so they name the field.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %q: expected %s, got JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: unexpected end of file"
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	default:
		return err.Error()
	}
}

var reflectStringOrList = reflect.TypeOf("")
