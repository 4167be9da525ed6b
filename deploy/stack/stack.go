package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/nats-io/nats-server/v2/server"
)

// Default addresses of devstack.
const (
	// DefaultNATSHost is the embedded server's interface: loopback only.
	DefaultNATSHost = "127.0.0.1"
	// DefaultNATSPort is NATS's usual client port, so the nats CLI finds it.
	DefaultNATSPort = 4222
	// DefaultReceiverAddr serves the webhook (and nothing else).
	DefaultReceiverAddr = "127.0.0.1:8080"
	// DefaultReceiverOpsAddr serves the receiver's ops endpoints.
	DefaultReceiverOpsAddr = "127.0.0.1:9090"
	// DefaultRouterAddr serves the router's ops endpoints.
	DefaultRouterAddr = "127.0.0.1:8081"
	// DefaultSinkAddr serves the sink's ops endpoints.
	DefaultSinkAddr = "127.0.0.1:8082"
	// DefaultRoutesBucket is the KV bucket devstack points the router at, so
	// routes can be edited live with the nats CLI.
	DefaultRoutesBucket = "ROUTES"
)

// Options configures [Start]. The zero value is usable: a temporary data
// directory, a free NATS port, free HTTP ports, no logs and no tracing.
type Options struct {
	// Dir keeps the JetStream store and the generated signing secret; devstack
	// uses ".devstack" relative to the current directory. "" uses a temporary
	// directory removed by [Stack.Close].
	Dir string
	// NATSPort is where the embedded server listens for clients, on
	// [DefaultNATSHost] (0: a free port; devstack uses 4222).
	NATSPort int
	// ReceiverAddr, RouterAddr and SinkAddr are the services' HTTP listen
	// addresses (default 127.0.0.1:0, a free port).
	ReceiverAddr, RouterAddr, SinkAddr string
	// ReceiverOpsAddr is the receiver's ops listen address (default
	// 127.0.0.1:0); the webhook port serves only the webhook.
	ReceiverOpsAddr string
	// Getenv is the real environment (os.Getenv in devstack); nil reads none.
	Getenv func(string) string
	// Env overrides the environment for the services (a key present with ""
	// reads as unset); tests set NOVU_API_URL and short timeouts here.
	Env map[string]string
	// ServiceEnv overrides Env for one service, keyed by "receiver", "router"
	// or "novu-sink": its own NATS user and inbox prefix, for instance.
	ServiceEnv map[string]map[string]string
	// NATSURL, when set, is a NATS server (or cluster, comma-separated) that
	// the caller runs and provisions: the stack starts no server of its own
	// and the services connect there.
	NATSURL string
	// Logger receives the server's and every service's logs, each with a
	// "service" attribute; nil discards them.
	Logger *slog.Logger
	// Telemetry returns the tracing of one service; nil is [service.NoTelemetry].
	// The stack calls each Shutdown after the services stopped.
	Telemetry func(ctx context.Context, serviceName string) (service.Telemetry, error)
	// ReadyTimeout bounds the wait for every service's /readyz (default 20s).
	ReadyTimeout time.Duration
}

// Stack is a running pipeline. Its fields are set by [Start] and read-only.
type Stack struct {
	// NATSURL is the embedded server's client URL, e.g. nats://127.0.0.1:4222.
	NATSURL string
	// WebhookURL is where Clerk, or the send tool, posts webhooks.
	WebhookURL string
	// ReceiverURL is the base URL of the receiver's webhook port.
	ReceiverURL string
	// ReceiverOpsURL, RouterURL and SinkURL are the base URLs of the
	// services' ops endpoints (/healthz, /readyz, /metrics).
	ReceiverOpsURL, RouterURL, SinkURL string
	// Secret is the signing secret the receiver verifies with.
	Secret string
	// SecretFile is where the generated secret is kept, or "" when it came
	// from the environment.
	SecretFile string
	// Novu says where triggers go: the Novu API URL, or dry-run.
	Novu string
	// DryRun is true when the sink only logs the triggers it would send.
	DryRun bool
	// RoutesBucket is the router's KV bucket of routes, "" when it reads a file
	// or its built-in rules.
	RoutesBucket string
	// Dir is the data directory.
	Dir string

	webhookPath string
	server      *server.Server
	log         *slog.Logger
	services    []*running
	tempDir     string
	timeout     time.Duration

	stopOnce sync.Once
	stop     chan struct{} // closed to ask for shutdown
	done     chan struct{} // closed once everything stopped
	err      error         // set before done is closed
}

// running is one service started by the stack.
type running struct {
	name     string
	baseURL  string
	opsURL   string // baseURL unless the service has an ops listener of its own
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
	shutdown func(context.Context) error
}

// component is one service, configured and ready to run.
type component struct {
	name    string
	addr    string
	opsAddr string // "" when addr serves the ops endpoints
	run     func(ctx context.Context, d deps) error
}

// deps is what the stack gives every service: the services' own
// [service.Deps], and the receiver's separate ops listener.
type deps struct {
	service.Deps
	opsListener net.Listener // nil unless the component has an opsAddr
}

// Start starts the embedded JetStream server, provisions every declared
// resource (streams, consumers, the rules bucket: what `clerknovu provision`
// applies) and runs
// the receiver, router and sink, returning once every service answers ready.
// The stack stops when ctx is done, when a service fails, or on [Stack.Close]:
// the receiver first, then the router, then the sink, then the server.
func Start(ctx context.Context, o Options) (*Stack, error) {
	o = o.withDefaults()
	st := &Stack{log: o.Logger, timeout: shutdownTimeout, stop: make(chan struct{}), done: make(chan struct{})}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "devstack-")
		if err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		o.Dir, st.tempDir = d, d
	} else if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	st.Dir = o.Dir
	ok := false
	defer func() {
		if !ok {
			st.teardown()
		}
	}()

	getenv, err := st.environment(o)
	if err != nil {
		return nil, err
	}
	// Check every configuration before starting anything.
	if _, err := st.components(o, getenv); err != nil {
		return nil, err
	}
	env := service.NewEnv(getenv)
	declared := events.Declared(env.Resources())
	if err := env.Err(); err != nil {
		return nil, &ConfigError{Service: "devstack", Err: err}
	}

	if o.NATSURL != "" {
		st.NATSURL = o.NATSURL
	} else {
		s, err := startNATS(DefaultNATSHost, o.NATSPort, o.Dir, o.Logger.With("service", "nats"))
		if err != nil {
			return nil, err
		}
		st.server = s
		st.NATSURL = s.ClientURL()
		if err := provision(ctx, st.NATSURL, declared); err != nil {
			return nil, err
		}
	}
	// The services connect to the embedded server; the NATS URL is set last,
	// once the server's real port is known.
	natsEnv := func(key string) string {
		if key == "NATS_URL" {
			return st.NATSURL
		}
		return getenv(key)
	}
	comps, err := st.components(o, natsEnv)
	if err != nil {
		return nil, err
	}

	for _, c := range comps {
		ln, err := net.Listen("tcp", c.addr)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot listen on %s (%w): stop what uses it or pick another address", c.name, c.addr, err)
		}
		var opsLn net.Listener
		if c.opsAddr != "" {
			if opsLn, err = net.Listen("tcp", c.opsAddr); err != nil {
				_ = ln.Close()
				return nil, fmt.Errorf("%s: cannot listen on %s (%w): stop what uses it or pick another address", c.name, c.opsAddr, err)
			}
		}
		if err := st.run(ctx, o, c, ln, opsLn); err != nil {
			_ = ln.Close()
			if opsLn != nil {
				_ = opsLn.Close()
			}
			return nil, err
		}
	}
	for _, r := range st.services {
		switch r.name {
		case "receiver":
			st.ReceiverURL, st.ReceiverOpsURL = r.baseURL, r.opsURL
		case "router":
			st.RouterURL = r.baseURL
		case "novu-sink":
			st.SinkURL = r.baseURL
		}
	}
	st.WebhookURL = st.ReceiverURL + st.webhookPath
	if err := st.waitReady(ctx, o.ReadyTimeout); err != nil {
		return nil, err
	}
	ok = true
	go st.supervise(ctx)
	return st, nil
}

// shutdownTimeout bounds the stop of each service.
const shutdownTimeout = 30 * time.Second

func (o Options) withDefaults() Options {
	if o.NATSPort == 0 {
		o.NATSPort = -1
	}
	for _, a := range []*string{&o.ReceiverAddr, &o.ReceiverOpsAddr, &o.RouterAddr, &o.SinkAddr} {
		if *a == "" {
			*a = "127.0.0.1:0"
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Telemetry == nil {
		o.Telemetry = func(context.Context, string) (service.Telemetry, error) { return service.NoTelemetry(), nil }
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 20 * time.Second
	}
	return o
}

// environment builds the services' getenv: o.Env over the real environment
// over devstack's defaults, with the NATS connection forced to the embedded
// server, and the signing secret generated when none is set.
func (st *Stack) environment(o Options) (func(string) string, error) {
	overrides := map[string]string{
		// The services talk to the embedded server, whatever the shell says.
		"NATS_URL": "", "NATS_CREDS": "", "NATS_NKEY": "", "NATS_USER": "", "NATS_PASSWORD": "",
		"NATS_PASSWORD_FILE": "", "NATS_TOKEN": "", "NATS_TOKEN_FILE": "",
		"NATS_TLS_CA": "", "NATS_TLS_CERT": "", "NATS_TLS_KEY": "",
	}
	for k, v := range o.Env {
		overrides[k] = v
	}
	defaults := map[string]string{
		"LOG_FORMAT":       "text",
		"ROUTES_KV_BUCKET": DefaultRoutesBucket,
	}
	base := Layered(overrides, o.Getenv, nil)
	if base("NOVU_SECRET_KEY") == "" && base("NOVU_SECRET_KEY_FILE") == "" {
		defaults["NOVU_DRY_RUN"] = "true"
	}
	if base("ROUTES_FILE") == "" {
		path, err := writeSyncRules(o.Dir)
		if err != nil {
			return nil, err
		}
		defaults["ROUTES_FILE"] = path
	}
	if base(SigningSecretEnv) == "" && base(SigningSecretEnv+"_FILE") == "" {
		secret, path, err := LoadOrCreateSecret(o.Dir)
		if err != nil {
			return nil, err
		}
		defaults[SigningSecretEnv] = secret
		st.SecretFile = path
	}
	getenv := Layered(overrides, o.Getenv, defaults)
	env := service.NewEnv(getenv)
	st.Secret = env.Secret(SigningSecretEnv)
	if err := env.Err(); err != nil {
		return nil, &ConfigError{Service: "receiver", Err: err}
	}
	return getenv, nil
}

// run starts one component on ln and records it.
func (st *Stack) run(ctx context.Context, o Options, c component, ln, opsLn net.Listener) error {
	tel, err := o.Telemetry(ctx, c.name)
	if err != nil {
		return fmt.Errorf("%s: telemetry: %w", c.name, err)
	}
	if tel.Shutdown == nil {
		tel.Shutdown = func(context.Context) error { return nil }
	}
	// The services stop one by one at shutdown, not when ctx ends.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &running{
		name:     c.name,
		baseURL:  "http://" + ln.Addr().String(),
		opsURL:   "http://" + ln.Addr().String(),
		cancel:   cancel,
		done:     make(chan struct{}),
		shutdown: tel.Shutdown,
	}
	st.services = append(st.services, r)
	d := deps{
		Deps:        service.Deps{Logger: o.Logger.With("service", c.name), Telemetry: tel, Registry: service.NewRegistry(), Listener: ln},
		opsListener: opsLn,
	}
	if opsLn != nil {
		r.opsURL = "http://" + opsLn.Addr().String()
	}
	go func() {
		defer close(r.done)
		r.err = c.run(sctx, d)
		if r.err == nil && sctx.Err() == nil {
			r.err = errors.New("stopped unexpectedly")
		}
		if sctx.Err() == nil {
			st.fail()
		}
	}()
	return nil
}

// waitReady polls every service's /readyz until it answers 200.
func (st *Stack) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for _, r := range st.services {
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.opsURL+"/readyz", nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-r.done:
				return fmt.Errorf("%s: %w", r.name, r.err)
			case <-ctx.Done():
				return fmt.Errorf("%s: not ready after %v (GET %s/readyz)", r.name, timeout, r.opsURL)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// fail starts the shutdown after a service stopped on its own; teardown
// collects its error.
func (st *Stack) fail() { st.requestStop() }

func (st *Stack) requestStop() { st.stopOnce.Do(func() { close(st.stop) }) }

// supervise shuts the stack down when ctx ends, a service fails, or Close is called.
func (st *Stack) supervise(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-st.stop:
	}
	st.teardown()
}

// teardown stops the services in order (receiver, router, sink), flushes their
// telemetry, shuts the server down and removes a temporary directory.
func (st *Stack) teardown() {
	var errs []error
	for _, r := range st.services {
		r.cancel()
		select {
		case <-r.done:
			if r.err != nil && !errors.Is(r.err, context.Canceled) {
				errs = append(errs, fmt.Errorf("%s: %w", r.name, r.err))
			}
		case <-time.After(st.timeout):
			errs = append(errs, fmt.Errorf("%s: not stopped after %v", r.name, st.timeout))
		}
		st.log.Debug("stopped", "service", r.name)
	}
	for _, r := range st.services {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: telemetry shutdown: %w", r.name, err))
		}
		cancel()
	}
	if st.server != nil {
		st.server.Shutdown()
		st.server.WaitForShutdown()
		st.log.Debug("stopped", "service", "nats")
	}
	if st.tempDir != "" {
		_ = os.RemoveAll(st.tempDir)
	}
	st.err = errors.Join(errs...)
	close(st.done)
}

// Wait blocks until the stack has stopped and returns why it failed, or nil
// after a clean shutdown.
func (st *Stack) Wait() error {
	<-st.done
	return st.err
}

// Close stops the stack (receiver, router, sink, then the server) and waits.
func (st *Stack) Close() error {
	st.requestStop()
	return st.Wait()
}
