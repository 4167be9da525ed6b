package app

import (
	"cmp"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/receiver/internal/httpapi"
	"github.com/clerknovu/pipeline/services/receiver/internal/verify"
)

// Defaults of [Config].
const (
	// DefaultAddr is RECEIVER_ADDR's default.
	DefaultAddr = ":8080"
	// DefaultPath is RECEIVER_PATH's default.
	DefaultPath = "/webhooks/clerk"
	// DefaultOpsAddr is RECEIVER_OPS_ADDR's default: /healthz, /readyz,
	// /metrics (and pprof when enabled), off the webhook port.
	DefaultOpsAddr = ":9090"
	// DefaultMaxBodyBytes is RECEIVER_MAX_BODY_BYTES's default
	// ([httpapi.DefaultMaxBodyBytes]: under NATS's default max_payload with
	// [httpapi.PayloadHeadroom] for the headers).
	DefaultMaxBodyBytes = httpapi.DefaultMaxBodyBytes
	// DefaultMaxInFlight is RECEIVER_MAX_IN_FLIGHT's default.
	DefaultMaxInFlight = httpapi.DefaultMaxInFlight
	// DefaultPublishTimeout is RECEIVER_PUBLISH_TIMEOUT's default.
	DefaultPublishTimeout = httpapi.DefaultPublishTimeout
	// DefaultMaxPending is RECEIVER_MAX_PENDING's default.
	DefaultMaxPending = 4096
	// DefaultShutdownTimeout is SHUTDOWN_TIMEOUT's default, shared by every service.
	DefaultShutdownTimeout = service.DefaultShutdownTimeout
)

// svixDeadline is how long Svix waits for an answer before it counts a failure.
const svixDeadline = 15 * time.Second

// checkPayload returns an error naming both numbers when a body of
// maxBody bytes and its headers cannot fit the server's maxPayload.
func checkPayload(maxBody, maxPayload int64) error {
	const headroom = httpapi.PayloadHeadroom
	if maxPayload > 0 && maxBody+headroom > maxPayload {
		return fmt.Errorf("RECEIVER_MAX_BODY_BYTES: %d plus %d bytes for headers does not fit the NATS server's max_payload of %d; want at most %d, or raise max_payload",
			maxBody, headroom, maxPayload, maxPayload-headroom)
	}
	return nil
}

// Secrets holds webhook signing secrets. It prints as a count, never the values.
type Secrets []string

// String returns "[n secrets]".
func (s Secrets) String() string { return fmt.Sprintf("[%d secrets]", len(s)) }

// GoString is String, for %#v.
func (s Secrets) GoString() string { return s.String() }

// Config is the receiver's configuration. Zero fields take the defaults
// below, so a Config built in code needs only Secrets and NATS.
type Config struct {
	// Secrets are the whsec_ signing secrets of the Clerk endpoint, several
	// during a rotation (CLERK_WEBHOOK_SIGNING_SECRET or
	// CLERK_WEBHOOK_SIGNING_SECRET_FILE, separated by commas or spaces; required).
	Secrets Secrets
	// Addr is the webhook listen address; it serves only Path
	// (RECEIVER_ADDR, default ":8080").
	Addr string
	// OpsAddr serves /healthz, /readyz, /metrics and, with Pprof, pprof
	// (RECEIVER_OPS_ADDR, default ":9090"). Keep it private.
	OpsAddr string
	// Pprof serves net/http/pprof under /debug/pprof/ on OpsAddr
	// (RECEIVER_PPROF, default false).
	Pprof bool
	// Path is the webhook path (RECEIVER_PATH, default "/webhooks/clerk").
	Path string
	// MaxBodyBytes caps a webhook body; larger ones get 413. With
	// [httpapi.PayloadHeadroom] it must fit the server's max_payload, checked at
	// connect (RECEIVER_MAX_BODY_BYTES, default 1032192).
	MaxBodyBytes int64
	// MaxInFlight bounds the webhooks read, verified or published at once,
	// so the bodies in memory stay under MaxInFlight × MaxBodyBytes; beyond
	// it, after 200 ms, requests get 503 (RECEIVER_MAX_IN_FLIGHT, default 128).
	MaxInFlight int
	// PublishTimeout bounds the wait for a PubAck before answering 503; it
	// must stay under Svix's 15 s deadline (RECEIVER_PUBLISH_TIMEOUT, default 5s).
	PublishTimeout time.Duration
	// MaxPending bounds the publishes awaiting a PubAck; beyond it requests
	// get 503 (RECEIVER_MAX_PENDING, default 4096).
	MaxPending int
	// ShutdownTimeout bounds the graceful shutdown: finishing in-flight
	// requests, then draining NATS (SHUTDOWN_TIMEOUT, default 20s, as for every service).
	ShutdownTimeout time.Duration
	// NATS says how to reach NATS and shape the streams (NATS_*, STREAM_*).
	NATS service.NATSConfig
	// Log is the log level and format (LOG_LEVEL, LOG_FORMAT).
	Log service.LogConfig
}

// LoadConfig reads the configuration from getenv (os.Getenv in main). Its
// error lists every problem, one per line, naming the variable to fix;
// [service.OneLine] joins them for the one line printed at start.
func LoadConfig(getenv func(string) string) (Config, error) {
	env := service.NewEnv(getenv)
	c := Config{
		Addr:            env.String("RECEIVER_ADDR", DefaultAddr),
		OpsAddr:         env.String("RECEIVER_OPS_ADDR", DefaultOpsAddr),
		Pprof:           env.Bool("RECEIVER_PPROF", false),
		MaxInFlight:     env.Int("RECEIVER_MAX_IN_FLIGHT", DefaultMaxInFlight, 1),
		Path:            env.String("RECEIVER_PATH", DefaultPath),
		MaxBodyBytes:    int64(env.Int("RECEIVER_MAX_BODY_BYTES", DefaultMaxBodyBytes, 1)),
		PublishTimeout:  env.Duration("RECEIVER_PUBLISH_TIMEOUT", DefaultPublishTimeout),
		MaxPending:      env.Int("RECEIVER_MAX_PENDING", DefaultMaxPending, 1),
		ShutdownTimeout: env.ShutdownTimeout(),
		NATS:            env.NATS(),
		Log:             env.Log(),
	}
	env.Replaced("RECEIVER_SHUTDOWN_TIMEOUT", "SHUTDOWN_TIMEOUT, the one shutdown budget of every service")
	env.Replaced("RECEIVER_DEBUG_ADDR", "RECEIVER_PPROF=true, which serves pprof on RECEIVER_OPS_ADDR")
	c.Secrets = loadSecrets(env)
	c.validate(env)
	if err := env.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// secretVar names the signing secret variable (or secretVar_FILE).
const secretVar = "CLERK_WEBHOOK_SIGNING_SECRET"

// loadSecrets reads and parses the signing secrets, recording any problem
// in env without ever echoing a secret.
func loadSecrets(env *service.Env) Secrets {
	raw := env.Secret(secretVar) // fails by itself when both are set or the file is unreadable
	file := env.Lookup(secretVar + "_FILE")
	switch {
	case raw != "":
		secrets, err := verify.ParseSecrets(raw)
		if err != nil {
			env.Fail(secretVar, "%v", err)
		}
		return secrets
	case file == "":
		env.Required(secretVar, "", "the whsec_... signing secret of the Clerk webhook endpoint, or "+secretVar+"_FILE")
	case env.Lookup(secretVar) == "":
		if _, err := os.Stat(file); err == nil {
			env.Fail(secretVar+"_FILE", "%q is empty", file)
		}
	}
	return nil
}

// Validate checks a Config built in code, after applying the defaults to
// zero fields, with the same rules as [LoadConfig].
func (c Config) Validate() error {
	c.setDefaults()
	env := service.NewEnv(nil)
	if len(c.Secrets) == 0 {
		env.Fail(secretVar, "required (the whsec_... signing secret of the Clerk webhook endpoint)")
	} else if _, err := verify.New(c.Secrets); err != nil {
		env.Fail(secretVar, "%v", err)
	}
	c.validate(env)
	return env.Err()
}

// validate records the problems of the non-secret fields in env.
func (c Config) validate(env *service.Env) {
	switch {
	case !strings.HasPrefix(c.Path, "/"):
		env.Fail("RECEIVER_PATH", "want a path starting with /, got %q", c.Path)
	case strings.ContainsAny(c.Path, "{} \t\r\n?#"):
		env.Fail("RECEIVER_PATH", "want a plain path without wildcards, spaces, ? or #, got %q", c.Path)
	}
	if c.OpsAddr == c.Addr {
		env.Fail("RECEIVER_OPS_ADDR", "must differ from RECEIVER_ADDR (%s): the ops endpoints stay off the webhook port", c.Addr)
	}
	if c.MaxBodyBytes < 1 {
		env.Fail("RECEIVER_MAX_BODY_BYTES", "want at least 1, got %d", c.MaxBodyBytes)
	}
	if c.PublishTimeout >= svixDeadline {
		env.Fail("RECEIVER_PUBLISH_TIMEOUT", "want less than Svix's %s deadline, got %s", svixDeadline, c.PublishTimeout)
	}
	if c.MaxInFlight < 1 {
		env.Fail("RECEIVER_MAX_IN_FLIGHT", "want at least 1, got %d", c.MaxInFlight)
	}
	if c.MaxPending < 1 {
		env.Fail("RECEIVER_MAX_PENDING", "want at least 1, got %d", c.MaxPending)
	}
}

// setDefaults fills zero fields.
func (c *Config) setDefaults() {
	c.Addr = cmp.Or(c.Addr, DefaultAddr)
	c.OpsAddr = cmp.Or(c.OpsAddr, DefaultOpsAddr)
	c.MaxInFlight = cmp.Or(c.MaxInFlight, DefaultMaxInFlight)
	c.Path = cmp.Or(c.Path, DefaultPath)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, DefaultPublishTimeout)
	c.MaxPending = cmp.Or(c.MaxPending, DefaultMaxPending)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.NATS.URL = cmp.Or(c.NATS.URL, service.DefaultNATSURL)
}
