package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	rt "github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/outcome"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the sink's spans.
const ScopeName = "github.com/clerknovu/pipeline/services/novu-sink"

// Notifier sends triggers to Novu; *novu.Client implements it.
type Notifier interface {
	Trigger(ctx context.Context, cmd *events.TriggerCommand, idempotencyKey string) outcome.Answer
	TriggerBulk(ctx context.Context, cmds []*events.TriggerCommand, idempotencyKey string) outcome.Answer
}

var _ Notifier = (*novu.Client)(nil)

// Publisher publishes dead letters (for the runtime); jetstream.JetStream implements it.
type Publisher = rt.Publisher

// Source is the pull consumer the sink reads; jetstream.Consumer implements it.
type Source = rt.Source

// Config tunes the sink. Zero values get the defaults noted.
type Config struct {
	// Concurrency bounds the Novu calls in flight (default 16).
	Concurrency int
	// Bulk sends at least BulkMin commands in hand in one bulk call.
	Bulk bool
	// BulkMin is the smallest backlog sent in bulk (default 50, at most 100).
	BulkMin int
	// MaxDeliver dead-letters a transient failure from this delivery on
	// (default 20). Back-pressure and outages never count: they pause.
	MaxDeliver int
	// RetryBase and RetryMax shape the backoff of transient failures
	// (defaults 1s and 5m); RetryMax also caps Retry-After.
	RetryBase, RetryMax time.Duration
	// BreakerFailures consecutive failures open the breaker (default 5).
	BreakerFailures int
	// BreakerOpen is how long it stays open before a probe (default 30s).
	BreakerOpen time.Duration
	// RateLimit is the client-side limit in Novu tokens per second; 0 is unlimited.
	RateLimit float64
	// AckWait is the consumer's ack wait; in-hand messages are kept alive
	// with InProgress every third of it (default 30s).
	AckWait time.Duration
	// FetchWait bounds how long one pull waits for a message, and so how
	// long a stop waits for the pull in flight (default
	// [rt.DefaultFetchWait]).
	FetchWait time.Duration
	// ShutdownTimeout bounds the stop: the calls in flight finish and
	// settle within it (default [rt.DefaultShutdownTimeout]).
	ShutdownTimeout time.Duration
	// DryRun logs each trigger it would send and acks, calling nothing.
	DryRun bool
}

func (c *Config) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.BulkMin <= 0 {
		c.BulkMin = 50
	}
	c.BulkMin = min(c.BulkMin, novu.MaxBulkEvents)
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 20
	}
	if c.RetryBase <= 0 {
		c.RetryBase = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.BreakerFailures <= 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerOpen <= 0 {
		c.BreakerOpen = 30 * time.Second
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
}

// Deps are the sink's collaborators.
type Deps struct {
	// Logger gets the sink's logs (default: discard).
	Logger *slog.Logger
	// TracerProvider and Propagator trace each message (default: no spans, W3C propagation).
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// Registerer gets the sink's metrics (default: a private registry).
	Registerer prometheus.Registerer
	// Notifier calls Novu; required unless Config.DryRun.
	Notifier Notifier
	// Publisher publishes dead letters; required.
	Publisher Publisher
}

// setDefaults fills the optional collaborators.
func (d *Deps) setDefaults() {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.TracerProvider == nil {
		d.TracerProvider = noop.NewTracerProvider()
	}
	if d.Propagator == nil {
		d.Propagator = service.Propagator()
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
}

// ErrMisconfigured reports a sink built without what it needs.
var ErrMisconfigured = errors.New("novu sink misconfigured")

// Sink consumes trigger commands and calls Novu.
type Sink struct {
	cfg    Config
	log    *slog.Logger
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	novu   Notifier
	pub    Publisher
	// m are the trigger metrics; a sync sink has none (its own are in
	// [SyncSink]), only its breaker's and limiter's.
	m       *metrics
	breaker *breaker
	limiter *limiter
	tracker *tracker
	// bulkBusy counts the bulk calls in flight (see [Sink.gate]).
	bulkBusy atomic.Int32
	// stopping is done when Run's context is: waits for a token or a pause give up.
	stopping context.Context
}

// New builds a sink and registers its metrics.
func New(cfg Config, deps Deps) (*Sink, error) {
	m := newMetrics()
	return newSink(cfg, deps, sinkParts{
		hasNotifier: deps.Notifier != nil,
		m:           m,
		gate:        &m.gateMetrics,
		collectors:  m.collectors(),
		what:        "sink",
	})
}

// sinkParts are what tell the trigger and the sync sink apart to [newSink].
type sinkParts struct {
	// hasNotifier reports a Novu client given (Deps.Notifier or SyncDeps.SyncNotifier).
	hasNotifier bool
	// check refuses other missing collaborators (nil: none).
	check func() error
	// consumer, if set, names the durable consumer in every log.
	consumer string
	// m are the trigger sink's metrics: nil for the sync sink, which has its own.
	m *metrics
	// gate are the breaker's and the limiter's metrics.
	gate *gateMetrics
	// collectors are registered, with gate's, on Deps.Registerer.
	collectors []prometheus.Collector
	// what names the sink in a registration error.
	what string
}

// newSink is the construction the trigger and the sync sink share: it fills
// cfg's and deps' defaults, refuses a sink without a dead-letter publisher
// or, unless a dry run, without a Novu client, registers the metrics and
// builds the breaker, the limiter and the tracker.
func newSink(cfg Config, deps Deps, p sinkParts) (*Sink, error) {
	cfg.setDefaults()
	switch {
	case deps.Publisher == nil:
		return nil, fmt.Errorf("%w: no dead-letter publisher", ErrMisconfigured)
	case !p.hasNotifier && !cfg.DryRun:
		return nil, fmt.Errorf("%w: no Novu client and not a dry run", ErrMisconfigured)
	}
	if p.check != nil {
		if err := p.check(); err != nil {
			return nil, err
		}
	}
	deps.setDefaults()
	for _, c := range append(p.gate.collectors(), p.collectors...) {
		if err := deps.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("register %s metrics: %w", p.what, err)
		}
	}
	log := deps.Logger
	if p.consumer != "" {
		log = log.With("consumer", p.consumer)
	}
	return &Sink{
		cfg:     cfg,
		log:     log,
		tracer:  deps.TracerProvider.Tracer(ScopeName),
		prop:    deps.Propagator,
		novu:    deps.Notifier,
		pub:     deps.Publisher,
		m:       p.m,
		breaker: newBreaker(cfg.BreakerFailures, cfg.BreakerOpen, log, p.gate),
		limiter: newLimiter(cfg.RateLimit, cfg.RetryMax, p.gate),
		tracker: newTracker(),
	}, nil
}

// Check is the /readyz check of the breaker. It never fails: while the
// breaker is open the sink is alive and keeps every message, and taking it
// out of service would change nothing (it serves no traffic) but page on a
// Novu outage the breaker already handles; the detail says "closed",
// "half-open" or "open: <what to fix>".
func (s *Sink) Check() service.Check {
	return service.Check{Name: "novu", Func: func(context.Context) (string, error) {
		return "breaker " + s.breaker.detail(), nil
	}}
}

// BreakerState returns the breaker's state: closed, half-open or open.
func (s *Sink) BreakerState() string { return s.breaker.state().String() }

// Run consumes commands from src on the consume runtime until ctx is done,
// then stops pulling, lets the calls in flight finish and settle (their
// messages kept alive meanwhile) and gives back what was not started, within
// Config.ShutdownTimeout. It returns nil after a clean stop.
func (s *Sink) Run(ctx context.Context, src Source) error {
	var batch []rt.Option
	if s.cfg.Bulk && !s.cfg.DryRun {
		batch = append(batch, rt.WithBatch(s.cfg.BulkMin, novu.MaxBulkEvents, s.handleBulk))
	}
	return s.run(ctx, src, workflowOf, s.handle, s.observe, batch...)
}

// run is the consume loop the trigger and the sync sink share: it runs
// handle on src's messages until ctx is done, observe counting each
// settlement and suffix naming dead letters' subjects after dlq.sink; the
// pull gate is on unless a dry run, and extra options come last.
func (s *Sink) run(ctx context.Context, src Source, suffix func(string) string, handle rt.HandlerFunc, observe rt.Observer, extra ...rt.Option) error {
	s.stopping = ctx
	opts := []rt.Option{
		rt.WithLogger(s.log),
		rt.WithTracing(s.tracer, s.prop),
		rt.WithAttributes(spanAttributes),
		rt.WithObserver(observe),
	}
	if !s.cfg.DryRun {
		opts = append(opts, rt.WithGate(rt.GateFunc(s.gate)))
	}
	r, err := rt.New(src, s.pub, handle, s.runtimeConfig(suffix), append(opts, extra...)...)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// runtimeConfig is the consume runtime's configuration of the sink;
// suffix names a dead letter's subject after dlq.sink.
func (s *Sink) runtimeConfig(suffix func(string) string) rt.Config {
	return rt.Config{
		Stage:           events.StageSink,
		Suffix:          suffix,
		Concurrency:     s.cfg.Concurrency,
		AckWait:         s.cfg.AckWait,
		MaxDeliver:      s.cfg.MaxDeliver,
		BackoffMin:      s.cfg.RetryBase,
		BackoffMax:      s.cfg.RetryMax,
		FetchWait:       s.cfg.FetchWait,
		ShutdownTimeout: s.cfg.ShutdownTimeout,
		// A Novu call is deduplicated only by Novu's own checks: make sure an
		// ack lost to a leader change does not send it again.
		ConfirmAcks: true,
	}
}

// workflowOf is the dead letter's subject suffix of a trigger subject: the workflow id.
func workflowOf(subject string) string {
	w, _ := strings.CutPrefix(subject, events.NovuTriggerSubjectPrefix)
	return w
}
