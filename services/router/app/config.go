package app

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"time"

	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/router/route"
)

// Defaults of [Config].
const (
	// DefaultAddr is ROUTER_ADDR's default.
	DefaultAddr = ":8081"
	// DefaultConcurrency is ROUTER_CONCURRENCY's default.
	DefaultConcurrency = 16
	// DefaultMaxDeliver is ROUTER_MAX_DELIVER's default.
	DefaultMaxDeliver = 10
	// DefaultAckWait is ROUTER_ACK_WAIT's default.
	DefaultAckWait = 30 * time.Second
	// DefaultPublishTimeout is ROUTER_PUBLISH_TIMEOUT's default.
	DefaultPublishTimeout = 5 * time.Second
	// DefaultBackoffMin is ROUTER_BACKOFF_MIN's default.
	DefaultBackoffMin = time.Second
	// DefaultBackoffMax is ROUTER_BACKOFF_MAX's default.
	DefaultBackoffMax = time.Minute
	// DefaultShutdownTimeout is SHUTDOWN_TIMEOUT's default, shared by every service.
	DefaultShutdownTimeout = service.DefaultShutdownTimeout
)

// Config is the router's configuration. [LoadConfig] reads it from the
// environment; a zero field gets its default in [Run].
type Config struct {
	// NATS says how to reach NATS and shape the streams (NATS_*, STREAM_*).
	// NATS_PROVISION (default true) also creates the durable consumer and the
	// rules KV bucket when they are missing.
	NATS service.NATSConfig
	// Log is LOG_LEVEL and LOG_FORMAT.
	Log service.LogConfig
	// Addr serves /healthz, /readyz and /metrics (ROUTER_ADDR, default :8081).
	Addr string
	// RoutesFile is a YAML rules file over the built-in rules (ROUTES_FILE).
	RoutesFile string
	// RoutesKVBucket is a KV bucket whose key "rules" holds YAML rules over the
	// file's, watched for changes (ROUTES_KV_BUCKET).
	RoutesKVBucket string
	// DefaultLocale is the subscriber locale when the event has none
	// (DEFAULT_LOCALE, default en_US).
	DefaultLocale string
	// Concurrency is how many events one instance handles at once
	// (ROUTER_CONCURRENCY, default 16).
	Concurrency int
	// MaxDeliver is the delivery on which a still-failing event is
	// dead-lettered (ROUTER_MAX_DELIVER, default 10). The consumer's
	// server-side MaxDeliver is a few more (consume.ServerMaxDeliver), the
	// last resort should even the dead letter fail.
	MaxDeliver int
	// AckWait is how long the server waits for an ack before redelivering
	// (ROUTER_ACK_WAIT, default 30s).
	AckWait time.Duration
	// PublishTimeout bounds each publish and its PubAck (ROUTER_PUBLISH_TIMEOUT, default 5s).
	PublishTimeout time.Duration
	// BackoffMin and BackoffMax bound the redelivery delay after a failure
	// (ROUTER_BACKOFF_MIN, default 1s; ROUTER_BACKOFF_MAX, default 1m).
	BackoffMin, BackoffMax time.Duration
	// ShutdownTimeout bounds the whole shutdown: the events in flight, the
	// NATS drain and the HTTP server, under one deadline (SHUTDOWN_TIMEOUT,
	// default 20s).
	ShutdownTimeout time.Duration
}

// LoadConfig reads the configuration from getenv (os.Getenv in main) and
// validates it, the rules file included, reporting every problem at once.
func LoadConfig(getenv func(string) string) (Config, error) {
	e := service.NewEnv(getenv)
	c := Config{
		NATS:            e.NATS(),
		Log:             e.Log(),
		Addr:            e.String("ROUTER_ADDR", DefaultAddr),
		RoutesFile:      e.File("ROUTES_FILE"),
		RoutesKVBucket:  e.Lookup("ROUTES_KV_BUCKET"),
		DefaultLocale:   e.String("DEFAULT_LOCALE", route.DefaultLocale),
		Concurrency:     e.Int("ROUTER_CONCURRENCY", DefaultConcurrency, 1),
		MaxDeliver:      e.Int("ROUTER_MAX_DELIVER", DefaultMaxDeliver, 1),
		AckWait:         e.Duration("ROUTER_ACK_WAIT", DefaultAckWait),
		PublishTimeout:  e.Duration("ROUTER_PUBLISH_TIMEOUT", DefaultPublishTimeout),
		BackoffMin:      e.Duration("ROUTER_BACKOFF_MIN", DefaultBackoffMin),
		BackoffMax:      e.Duration("ROUTER_BACKOFF_MAX", DefaultBackoffMax),
		ShutdownTimeout: e.ShutdownTimeout(),
	}
	if err := e.Err(); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.RoutesFile != "" {
		if _, err := loadRulesFile(c.RoutesFile); err != nil {
			return c, fmt.Errorf("ROUTES_FILE: %w", err)
		}
	}
	return c, nil
}

func (c *Config) setDefaults() {
	c.NATS.URL = cmp.Or(c.NATS.URL, service.DefaultNATSURL)
	c.Addr = cmp.Or(c.Addr, DefaultAddr)
	c.DefaultLocale = cmp.Or(c.DefaultLocale, route.DefaultLocale)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, DefaultMaxDeliver)
	c.AckWait = cmp.Or(c.AckWait, DefaultAckWait)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, DefaultPublishTimeout)
	c.BackoffMin = cmp.Or(c.BackoffMin, DefaultBackoffMin)
	c.BackoffMax = cmp.Or(c.BackoffMax, max(DefaultBackoffMax, c.BackoffMin))
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
}

// localeRE accepts BCP-47-ish locales as Novu does: en_US, en-US, fr, zh-Hant-TW.
var localeRE = regexp.MustCompile(`^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$`)

// bucketRE is what JetStream accepts as a KV bucket name.
var bucketRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate reports every setting that cannot work, one per line, each naming
// the variable to fix.
func (c Config) Validate() error {
	var errs []error
	fail := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Addr); c.Addr != "" && err != nil {
		fail("ROUTER_ADDR", "want host:port such as :8081, got %q", c.Addr)
	}
	if c.DefaultLocale != "" && !localeRE.MatchString(c.DefaultLocale) {
		fail("DEFAULT_LOCALE", "want a locale such as en_US or fr-FR, got %q", c.DefaultLocale)
	}
	if c.RoutesKVBucket != "" && !bucketRE.MatchString(c.RoutesKVBucket) {
		fail("ROUTES_KV_BUCKET", "want a bucket name of letters, digits, '-' and '_', got %q", c.RoutesKVBucket)
	}
	if c.Concurrency < 0 || c.Concurrency > 4096 {
		fail("ROUTER_CONCURRENCY", "want 1 to 4096, got %d", c.Concurrency)
	}
	if c.MaxDeliver < 0 {
		fail("ROUTER_MAX_DELIVER", "want at least 1, got %d", c.MaxDeliver)
	}
	if c.AckWait > 0 && c.PublishTimeout > 0 && c.AckWait <= 2*c.PublishTimeout {
		fail("ROUTER_ACK_WAIT", "must exceed twice ROUTER_PUBLISH_TIMEOUT (%v, a command and a dead letter may both be published), got %v", c.PublishTimeout, c.AckWait)
	}
	if c.BackoffMax > 0 && c.BackoffMin > c.BackoffMax {
		fail("ROUTER_BACKOFF_MIN", "must not exceed ROUTER_BACKOFF_MAX (%v), got %v", c.BackoffMax, c.BackoffMin)
	}
	return errors.Join(errs...)
}

// loadRulesFile reads and parses a rules file.
func loadRulesFile(path string) (route.Layer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return route.Layer{}, fmt.Errorf("read rules: %w", err)
	}
	return route.Parse("file "+path, data)
}
