package app

import (
	"cmp"
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
	// DefaultAddr is ROUTER_OPS_ADDR's default.
	DefaultAddr = ":8081"
	// DefaultConcurrency is ROUTER_CONCURRENCY's default.
	DefaultConcurrency = 16
	// DefaultMaxDeliver is ROUTER_MAX_DELIVER's default.
	DefaultMaxDeliver = service.DefaultRouterMaxDeliver
	// DefaultAckWait is ROUTER_ACK_WAIT's default.
	DefaultAckWait = service.DefaultRouterAckWait
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
	// Addr serves /healthz, /readyz and /metrics (ROUTER_OPS_ADDR, default :8081).
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

// LoadConfig reads the configuration from getenv (os.Getenv in main). Its
// error lists every problem, one per line, naming the variable to fix (the
// rules file included); [service.OneLine] joins them for the one line printed
// at start.
func LoadConfig(getenv func(string) string) (Config, error) {
	env := service.NewEnv(getenv)
	c := Config{
		NATS:            env.NATS(),
		Log:             env.Log(),
		Addr:            env.String("ROUTER_OPS_ADDR", DefaultAddr),
		RoutesFile:      env.File("ROUTES_FILE"),
		RoutesKVBucket:  env.Lookup("ROUTES_KV_BUCKET"),
		DefaultLocale:   env.String("DEFAULT_LOCALE", route.DefaultLocale),
		Concurrency:     env.Int("ROUTER_CONCURRENCY", DefaultConcurrency, 1),
		MaxDeliver:      env.Int("ROUTER_MAX_DELIVER", DefaultMaxDeliver, 1),
		AckWait:         env.Duration("ROUTER_ACK_WAIT", DefaultAckWait),
		PublishTimeout:  env.Duration("ROUTER_PUBLISH_TIMEOUT", DefaultPublishTimeout),
		BackoffMin:      env.Duration("ROUTER_BACKOFF_MIN", DefaultBackoffMin),
		BackoffMax:      env.Duration("ROUTER_BACKOFF_MAX", DefaultBackoffMax),
		ShutdownTimeout: env.ShutdownTimeout(),
	}
	env.Replaced("ROUTER_ADDR", "ROUTER_OPS_ADDR, the ops listener (/healthz, /readyz, /metrics)")
	c.validate(env)
	if c.RoutesFile != "" {
		if _, err := loadRulesFile(c.RoutesFile); err != nil {
			env.Fail("ROUTES_FILE", "%v", err)
		}
	}
	if err := env.Err(); err != nil {
		return Config{}, err
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

// Validate checks a Config built in code, after applying the defaults to
// zero fields, with the same rules as [LoadConfig] (the rules file aside,
// which [Run] loads).
func (c Config) Validate() error {
	c.setDefaults()
	env := service.NewEnv(nil)
	c.validate(env)
	return env.Err()
}

// validate records the settings that cannot work in env.
func (c Config) validate(env *service.Env) {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		env.Fail("ROUTER_OPS_ADDR", "want host:port such as :8081, got %q", c.Addr)
	}
	if !localeRE.MatchString(c.DefaultLocale) {
		env.Fail("DEFAULT_LOCALE", "want a locale such as en_US or fr-FR, got %q", c.DefaultLocale)
	}
	if c.RoutesKVBucket != "" && !bucketRE.MatchString(c.RoutesKVBucket) {
		env.Fail("ROUTES_KV_BUCKET", "want a bucket name of letters, digits, '-' and '_', got %q", c.RoutesKVBucket)
	}
	if c.Concurrency < 1 || c.Concurrency > 4096 {
		env.Fail("ROUTER_CONCURRENCY", "want 1 to 4096, got %d", c.Concurrency)
	}
	if c.MaxDeliver < 1 {
		env.Fail("ROUTER_MAX_DELIVER", "want at least 1, got %d", c.MaxDeliver)
	}
	if c.AckWait <= 2*c.PublishTimeout {
		env.Fail("ROUTER_ACK_WAIT", "must exceed twice ROUTER_PUBLISH_TIMEOUT (%v, a command and a dead letter may both be published), got %v", c.PublishTimeout, c.AckWait)
	}
	if c.BackoffMin > c.BackoffMax {
		env.Fail("ROUTER_BACKOFF_MIN", "must not exceed ROUTER_BACKOFF_MAX (%v), got %v", c.BackoffMax, c.BackoffMin)
	}
}

// loadRulesFile reads and parses a rules file.
func loadRulesFile(path string) (route.Layer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return route.Layer{}, fmt.Errorf("read rules: %w", err)
	}
	return route.Parse("file "+path, data)
}
