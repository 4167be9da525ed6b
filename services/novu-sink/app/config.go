package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/clerknovu/pipeline/pkg/runtime/service"
)

// Defaults of the settings.
const (
	DefaultAddr            = ":8082"
	DefaultAPIURL          = "https://api.novu.co"
	EUAPIURL               = "https://eu.api.novu.co"
	DefaultTimeout         = 10 * time.Second
	DefaultRetryBase       = time.Second
	DefaultRetryMax        = 5 * time.Minute
	DefaultMaxDeliver      = 20
	DefaultBreakerFailures = 5
	DefaultBreakerOpen     = 30 * time.Second
	DefaultRateLimit       = 60 // Novu's free tier, triggers per second
	DefaultSyncRateLimit   = 20 // Novu's free tier, configuration calls per second
	DefaultBulkMin         = 50
	DefaultConcurrency     = 16
	DefaultFetchWait       = time.Second
	// DefaultShutdownTimeout is SHUTDOWN_TIMEOUT's default, shared by every service.
	DefaultShutdownTimeout = service.DefaultShutdownTimeout
	// MinAckWait is the floor of the default ack wait, max(MinAckWait, 3×timeout).
	MinAckWait = 30 * time.Second
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
	// Addr serves /healthz, /readyz and /metrics (SINK_ADDR, default :8082).
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

// LoadConfig reads the configuration from getenv (os.Getenv in main) and
// validates it. The error lists every problem, one per line.
func LoadConfig(getenv func(string) string) (Config, error) {
	e := service.NewEnv(getenv)
	c := Config{
		NATS:            e.NATS(),
		Log:             e.Log(),
		Addr:            e.String("SINK_ADDR", DefaultAddr),
		APIURL:          e.String("NOVU_API_URL", DefaultAPIURL),
		SecretKey:       Secret(e.Secret("NOVU_SECRET_KEY")),
		DryRun:          e.Bool("NOVU_DRY_RUN", false),
		Timeout:         e.Duration("NOVU_TIMEOUT", DefaultTimeout),
		RetryBase:       e.Duration("NOVU_RETRY_BASE", DefaultRetryBase),
		RetryMax:        e.Duration("NOVU_RETRY_MAX", DefaultRetryMax),
		MaxDeliver:      e.Int("NOVU_MAX_DELIVER", DefaultMaxDeliver, 1),
		BreakerFailures: e.Int("NOVU_BREAKER_FAILURES", DefaultBreakerFailures, 1),
		BreakerOpen:     e.Duration("NOVU_BREAKER_OPEN", DefaultBreakerOpen),
		RateLimit:       e.Float("NOVU_RATE_LIMIT", DefaultRateLimit, 0),
		Sync:            e.Bool("NOVU_SYNC", true),
		SyncRateLimit:   e.Float("NOVU_SYNC_RATE_LIMIT", DefaultSyncRateLimit, 0),
		Bulk:            e.Bool("NOVU_BULK", true),
		BulkMin:         e.Int("NOVU_BULK_MIN", DefaultBulkMin, 2),
		Concurrency:     e.Int("NOVU_CONCURRENCY", DefaultConcurrency, 1),
		FetchWait:       e.Duration("NOVU_FETCH_WAIT", DefaultFetchWait),
		ShutdownTimeout: e.ShutdownTimeout(),
	}
	c.AckWait = e.Duration("NOVU_ACK_WAIT", defaultAckWait(c.Timeout))
	if !c.DryRun {
		e.Required("NOVU_SECRET_KEY", string(c.SecretKey), "the secret key of your Novu environment, or set NOVU_DRY_RUN=true to only log triggers")
	}
	if err := e.Err(); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func defaultAckWait(timeout time.Duration) time.Duration { return max(MinAckWait, 3*timeout) }

// Validate reports settings that cannot work together, one per line.
func (c Config) Validate() error {
	var errs []error
	fail := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fail("NOVU_API_URL", "want an http(s) URL such as %s or %s, got %q", DefaultAPIURL, EUAPIURL, c.APIURL)
	} else if u.User != nil {
		fail("NOVU_API_URL", "must not hold credentials; put the key in NOVU_SECRET_KEY")
	}
	if !c.DryRun && c.SecretKey == "" {
		fail("NOVU_SECRET_KEY", "required (or set NOVU_DRY_RUN=true to only log triggers)")
	}
	if c.Timeout <= 0 {
		fail("NOVU_TIMEOUT", "want a positive duration")
	}
	if c.AckWait <= c.Timeout {
		fail("NOVU_ACK_WAIT", "want more than NOVU_TIMEOUT (%v), got %v", c.Timeout, c.AckWait)
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		fail("NOVU_RETRY_MAX", "want NOVU_RETRY_BASE (%v) > 0 and NOVU_RETRY_MAX (%v) at least as long", c.RetryBase, c.RetryMax)
	}
	if c.MaxDeliver < 1 {
		fail("NOVU_MAX_DELIVER", "want at least 1, got %d", c.MaxDeliver)
	}
	if c.BreakerFailures < 1 {
		fail("NOVU_BREAKER_FAILURES", "want at least 1, got %d", c.BreakerFailures)
	}
	if c.BreakerOpen <= 0 {
		fail("NOVU_BREAKER_OPEN", "want a positive duration")
	}
	if c.RateLimit < 0 {
		fail("NOVU_RATE_LIMIT", "want 0 (unlimited) or more, got %g", c.RateLimit)
	}
	if c.BulkMin < 2 || c.BulkMin > 100 {
		fail("NOVU_BULK_MIN", "want 2 to 100 (Novu takes at most 100 events per bulk call), got %d", c.BulkMin)
	}
	if c.Concurrency < 1 {
		fail("NOVU_CONCURRENCY", "want at least 1, got %d", c.Concurrency)
	}
	if c.FetchWait <= 0 {
		fail("NOVU_FETCH_WAIT", "want a positive duration")
	}
	if c.ShutdownTimeout <= 0 {
		fail("SHUTDOWN_TIMEOUT", "want a positive duration")
	}
	if c.Addr == "" {
		fail("SINK_ADDR", "want a listen address such as :8082")
	}
	return errors.Join(errs...)
}
