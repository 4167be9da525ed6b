package app

import (
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/clerknovu/pipeline/pkg/runtime/service"
)

// Defaults of the settings.
const (
	DefaultAddr            = ":8082"
	DefaultAPIURL          = "https://api.novu.co"
	EUAPIURL               = "https://eu.api.novu.co"
	DefaultTimeout         = service.DefaultNovuTimeout
	DefaultRetryBase       = time.Second
	DefaultRetryMax        = 5 * time.Minute
	DefaultMaxDeliver      = service.DefaultSinkMaxDeliver
	DefaultBreakerFailures = 5
	DefaultBreakerOpen     = 30 * time.Second
	DefaultRateLimit       = 60 // Novu's free tier, triggers per second
	DefaultSyncRateLimit   = 20 // Novu's free tier, configuration calls per second
	DefaultBulkMin         = 50
	DefaultConcurrency     = 16
	DefaultFetchWait       = time.Second
	// DefaultShutdownTimeout is SHUTDOWN_TIMEOUT's default, shared by every service.
	DefaultShutdownTimeout = service.DefaultShutdownTimeout
)

// Secret is a string that never shows in logs or formatted output.
type Secret string

// String hides the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[REDACTED]"
}

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue hides the secret from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Config is the sink's configuration, read from the environment by [LoadConfig].
type Config struct {
	// NATS is how to reach NATS (NATS_URL, NATS_CREDS... see service.Env.NATS).
	NATS service.NATSConfig
	// Log is LOG_LEVEL and LOG_FORMAT.
	Log service.LogConfig
	// Addr serves /healthz, /readyz and /metrics (SINK_OPS_ADDR, default :8082).
	Addr string
	// APIURL is Novu's API root (NOVU_API_URL, default https://api.novu.co;
	// EU: https://eu.api.novu.co).
	APIURL string
	// SecretKey is the Novu environment's secret key (NOVU_SECRET_KEY or
	// NOVU_SECRET_KEY_FILE); required unless DryRun.
	SecretKey Secret
	// DryRun logs each trigger instead of sending it, and acks (NOVU_DRY_RUN, default false).
	DryRun bool
	// Timeout bounds each Novu request (NOVU_TIMEOUT, default 10s).
	Timeout time.Duration
	// AckWait is the consumer's ack wait (NOVU_ACK_WAIT, default max(30s, 3×NOVU_TIMEOUT));
	// it must exceed Timeout.
	AckWait time.Duration
	// RetryBase and RetryMax shape the backoff of transient failures
	// (NOVU_RETRY_BASE default 1s, NOVU_RETRY_MAX default 5m).
	RetryBase, RetryMax time.Duration
	// MaxDeliver dead-letters a transient failure on this delivery (NOVU_MAX_DELIVER, default 20).
	MaxDeliver int
	// BreakerFailures consecutive failures open the breaker (NOVU_BREAKER_FAILURES, default 5).
	BreakerFailures int
	// BreakerOpen is how long the breaker stays open (NOVU_BREAKER_OPEN, default 30s).
	BreakerOpen time.Duration
	// RateLimit is Novu tokens per second, 1 per trigger and 100 per bulk call
	// (NOVU_RATE_LIMIT, default 60; 0 = unlimited).
	RateLimit float64
	// Sync consumes the subscriber and topic sync commands (durable
	// novu-sink-sync) next to the triggers (NOVU_SYNC, default true; the
	// router publishes them only when its rules ask for sync).
	Sync bool
	// SyncRateLimit is Novu's "configuration" category, calls per second,
	// separate from RateLimit's "events" category (NOVU_SYNC_RATE_LIMIT,
	// default 20; 0 = unlimited).
	SyncRateLimit float64
	// Bulk sends a backlog in bulk calls (NOVU_BULK, default true).
	Bulk bool
	// BulkMin is the smallest backlog sent in bulk (NOVU_BULK_MIN, default 50, 2 to 100).
	BulkMin int
	// Concurrency bounds the Novu calls in flight (NOVU_CONCURRENCY, default 16).
	Concurrency int
	// FetchWait bounds one wait for new messages, and so how long a stop
	// waits for the fetch loop (NOVU_FETCH_WAIT, default 1s).
	FetchWait time.Duration
	// ShutdownTimeout bounds the whole stop: the calls in flight finish and
	// settle, the rest is given back, NATS drains (SHUTDOWN_TIMEOUT, default 20s).
	ShutdownTimeout time.Duration
}

// LoadConfig reads the configuration from getenv (os.Getenv in main). Its
// error lists every problem, one per line, naming the variable to fix;
// [service.OneLine] joins them for the one line printed at start.
func LoadConfig(getenv func(string) string) (Config, error) {
	env := service.NewEnv(getenv)
	c := Config{
		NATS:            env.NATS(),
		Log:             env.Log(),
		Addr:            env.String("SINK_OPS_ADDR", DefaultAddr),
		APIURL:          env.String("NOVU_API_URL", DefaultAPIURL),
		SecretKey:       Secret(env.Secret("NOVU_SECRET_KEY")),
		DryRun:          env.Bool("NOVU_DRY_RUN", false),
		Timeout:         env.Duration("NOVU_TIMEOUT", DefaultTimeout),
		RetryBase:       env.Duration("NOVU_RETRY_BASE", DefaultRetryBase),
		RetryMax:        env.Duration("NOVU_RETRY_MAX", DefaultRetryMax),
		MaxDeliver:      env.Int("NOVU_MAX_DELIVER", DefaultMaxDeliver, 1),
		BreakerFailures: env.Int("NOVU_BREAKER_FAILURES", DefaultBreakerFailures, 1),
		BreakerOpen:     env.Duration("NOVU_BREAKER_OPEN", DefaultBreakerOpen),
		RateLimit:       env.Float("NOVU_RATE_LIMIT", DefaultRateLimit, 0),
		Sync:            env.Bool("NOVU_SYNC", true),
		SyncRateLimit:   env.Float("NOVU_SYNC_RATE_LIMIT", DefaultSyncRateLimit, 0),
		Bulk:            env.Bool("NOVU_BULK", true),
		BulkMin:         env.Int("NOVU_BULK_MIN", DefaultBulkMin, 2),
		Concurrency:     env.Int("NOVU_CONCURRENCY", DefaultConcurrency, 1),
		FetchWait:       env.Duration("NOVU_FETCH_WAIT", DefaultFetchWait),
		ShutdownTimeout: env.ShutdownTimeout(),
	}
	c.AckWait = env.Duration("NOVU_ACK_WAIT", service.DefaultSinkAckWait(c.Timeout))
	env.Replaced("SINK_ADDR", "SINK_OPS_ADDR, the ops listener (/healthz, /readyz, /metrics)")
	c.validate(env)
	if err := env.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// loopback reports whether host is localhost or a loopback IP address.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Validate checks a Config built in code with the same rules as [LoadConfig].
// Unlike the receiver's and the router's, it fills no defaults: NOVU_BULK
// defaults to true, which a zero Config cannot tell from false.
func (c Config) Validate() error {
	env := service.NewEnv(nil)
	c.validate(env)
	return env.Err()
}

// validate records the settings that cannot work in env.
func (c Config) validate(env *service.Env) {
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		env.Fail("NOVU_API_URL", "want an http(s) URL such as %s or %s, got %q", DefaultAPIURL, EUAPIURL, c.APIURL)
	} else if u.User != nil {
		env.Fail("NOVU_API_URL", "must not hold credentials; put the key in NOVU_SECRET_KEY")
	} else if u.Scheme == "http" && !loopback(u.Hostname()) {
		env.Fail("NOVU_API_URL", "want https: http would send NOVU_SECRET_KEY in clear to %s (plain http is for a loopback host only)", u.Host)
	}
	if !c.DryRun && c.SecretKey == "" {
		env.Fail("NOVU_SECRET_KEY", "required (the secret key of your Novu environment, or NOVU_SECRET_KEY_FILE), or set NOVU_DRY_RUN=true to only log triggers")
	}
	if c.Timeout <= 0 {
		env.Fail("NOVU_TIMEOUT", "want a positive duration such as 10s")
	}
	if c.AckWait <= c.Timeout {
		env.Fail("NOVU_ACK_WAIT", "want more than NOVU_TIMEOUT (%v), got %v", c.Timeout, c.AckWait)
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		env.Fail("NOVU_RETRY_MAX", "want NOVU_RETRY_BASE (%v) > 0 and NOVU_RETRY_MAX (%v) at least as long", c.RetryBase, c.RetryMax)
	}
	if c.MaxDeliver < 1 {
		env.Fail("NOVU_MAX_DELIVER", "want at least 1, got %d", c.MaxDeliver)
	}
	if c.BreakerFailures < 1 {
		env.Fail("NOVU_BREAKER_FAILURES", "want at least 1, got %d", c.BreakerFailures)
	}
	if c.BreakerOpen <= 0 {
		env.Fail("NOVU_BREAKER_OPEN", "want a positive duration such as 30s")
	}
	if c.RateLimit < 0 {
		env.Fail("NOVU_RATE_LIMIT", "want 0 (unlimited) or more, got %g", c.RateLimit)
	}
	if c.BulkMin < 2 || c.BulkMin > 100 {
		env.Fail("NOVU_BULK_MIN", "want 2 to 100 (Novu takes at most 100 events per bulk call), got %d", c.BulkMin)
	}
	if c.Concurrency < 1 {
		env.Fail("NOVU_CONCURRENCY", "want at least 1, got %d", c.Concurrency)
	}
	if c.FetchWait <= 0 {
		env.Fail("NOVU_FETCH_WAIT", "want a positive duration such as 1s")
	}
	if c.ShutdownTimeout <= 0 {
		env.Fail("SHUTDOWN_TIMEOUT", "want a positive duration such as 20s")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		env.Fail("SINK_OPS_ADDR", "want host:port such as :8082, got %q", c.Addr)
	}
}
