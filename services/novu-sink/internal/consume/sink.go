package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/outcome"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
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

// Publisher publishes dead letters and waits for the PubAck; jetstream.JetStream implements it.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Source is the pull consumer the sink fetches from; jetstream.Consumer implements it.
type Source interface {
	Fetch(batch int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error)
	FetchNoWait(batch int) (jetstream.MessageBatch, error)
}

var _ Source = jetstream.Consumer(nil)

// Config tunes the sink. Zero values get the defaults noted.
type Config struct {
	// Concurrency bounds the Novu calls in flight (default 16).
	Concurrency int
	// Bulk sends a fetched backlog of at least BulkMin commands in one bulk call.
	Bulk bool
	// BulkMin is the smallest backlog sent in bulk (default 50, at most 100).
	BulkMin int
	// MaxDeliver dead-letters a transient failure from this delivery on (default 20).
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
	// FetchWait bounds how long one fetch waits for a message, and so how
	// long a stop waits for the fetch loop (default 1s).
	FetchWait time.Duration
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
	if c.FetchWait <= 0 {
		c.FetchWait = time.Second
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

// ErrMisconfigured reports a sink built without what it needs.
var ErrMisconfigured = errors.New("novu sink misconfigured")

// Sink consumes trigger commands and calls Novu.
type Sink struct {
	cfg     Config
	log     *slog.Logger
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	novu    Notifier
	pub     Publisher
	m       *metrics
	breaker *breaker
	limiter *limiter
	tracker *tracker
	inHand  *inHand
}

// New builds a sink and registers its metrics.
func New(cfg Config, deps Deps) (*Sink, error) {
	cfg.setDefaults()
	if deps.Publisher == nil {
		return nil, fmt.Errorf("%w: no dead-letter publisher", ErrMisconfigured)
	}
	if deps.Notifier == nil && !cfg.DryRun {
		return nil, fmt.Errorf("%w: no Novu client and not a dry run", ErrMisconfigured)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.TracerProvider == nil {
		deps.TracerProvider = noop.NewTracerProvider()
	}
	if deps.Propagator == nil {
		deps.Propagator = service.Propagator()
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register sink metrics: %w", err)
	}
	return &Sink{
		cfg:     cfg,
		log:     deps.Logger,
		tracer:  deps.TracerProvider.Tracer(ScopeName),
		prop:    deps.Propagator,
		novu:    deps.Notifier,
		pub:     deps.Publisher,
		m:       m,
		breaker: newBreaker(cfg.BreakerFailures, cfg.BreakerOpen, deps.Logger, m),
		limiter: newLimiter(cfg.RateLimit, cfg.RetryMax, m),
		tracker: newTracker(),
		inHand:  newInHand(cfg.AckWait),
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

// Run fetches and handles commands until ctx is done, then stops fetching,
// lets the calls in flight finish and settles every message in hand (acked,
// NAKed or dead-lettered) before it returns. It returns nil.
func (s *Sink) Run(ctx context.Context, src Source) error {
	slots := make(chan struct{}, s.cfg.Concurrency)
	// Bulk calls in flight, each holding up to 100 messages and their
	// encoded request: a quarter of the concurrency keeps a burst's memory
	// bounded (a few hundred messages in hand) while calls of 100 still go
	// out far faster than any Novu tier accepts them.
	bulkSlots := make(chan struct{}, max(1, s.cfg.Concurrency/4))
	var wg sync.WaitGroup

	keepAliveDone := make(chan struct{})
	go func() {
		defer close(keepAliveDone)
		t := time.NewTicker(s.inHand.every / 2)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				s.inHand.touch(now)
			case <-ctx.Done():
				return
			}
		}
	}()

	acquire := func() bool {
		select {
		case slots <- struct{}{}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	tryAcquire := func() bool {
		select {
		case slots <- struct{}{}:
			return true
		default:
			return false
		}
	}
	release := func(n int) {
		for range n {
			<-slots
		}
	}
	spawn := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer release(1)
			f()
		}()
	}

	for ctx.Err() == nil {
		switch s.breaker.state() {
		case gobreaker.StateOpen:
			// Stop fetching: the backlog stays in the stream.
			sleep(ctx, max(s.breaker.openRemaining(), time.Millisecond))
			continue
		case gobreaker.StateHalfOpen:
			// One probe, alone: wait for every call in flight to settle first.
			held := 0
			for held < s.cfg.Concurrency && acquire() {
				held++
			}
			if ctx.Err() == nil {
				for _, msg := range s.fetch(ctx, src, 1) {
					it := s.prepare(ctx, msg)
					switch {
					case it == nil:
					case s.breaker.skipProbe(it.cmd.TransactionID):
						// It opened the breaker: back off on its own
						// and let another message be the probe.
						s.notSent(it, events.Backoff(int(it.deliveries), s.cfg.RetryBase, s.cfg.RetryMax, rand.Float64()))
					default:
						s.handleSingle(ctx, it)
					}
				}
			}
			release(held)
			continue
		}

		bulk := s.cfg.Bulk && !s.cfg.DryRun
		if bulk {
			// Under a rate limit, fetch only once the bucket can pay for a
			// bulk call: a batch waiting for tokens only fills memory.
			s.limiter.awaitTokens(ctx, bulkCost)
			select {
			case bulkSlots <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		releaseBulk := func() {
			if bulk {
				<-bulkSlots
			}
		}
		if !acquire() {
			releaseBulk()
			break
		}
		held := 1
		for held < s.cfg.Concurrency && tryAcquire() {
			held++
		}
		want := held
		if s.cfg.Bulk && !s.cfg.DryRun {
			want = novu.MaxBulkEvents
		}
		msgs := s.fetch(ctx, src, want)
		if s.cfg.Bulk && !s.cfg.DryRun && len(msgs) >= s.cfg.BulkMin {
			items := make([]*item, 0, len(msgs))
			for _, msg := range msgs {
				if it := s.prepare(ctx, msg); it != nil {
					items = append(items, it)
				}
			}
			release(held - 1)
			spawn(func() {
				defer releaseBulk()
				s.handleBulk(ctx, items)
			})
			continue
		}
		releaseBulk() // not a bulk call after all: single calls use the plain slots
		for _, msg := range msgs {
			if held == 0 {
				if !acquire() {
					// Stopping: give it back untouched for another instance.
					s.giveBack(msg)
					continue
				}
				held++
			}
			held--
			spawn(func() {
				if it := s.prepare(ctx, msg); it != nil {
					s.handleSingle(ctx, it)
				}
			})
		}
		release(held)
	}
	wg.Wait()
	<-keepAliveDone
	return nil
}

// fetch returns up to want messages: those available now, or else the first
// to arrive within FetchWait plus any that came with it. It never cancels a
// pull in flight, so no message is delivered to a fetch nobody reads.
func (s *Sink) fetch(ctx context.Context, src Source, want int) []jetstream.Msg {
	msgs, err := collect(src.FetchNoWait(want))
	if err == nil && len(msgs) == 0 {
		msgs, err = collect(src.Fetch(1, jetstream.FetchMaxWait(s.cfg.FetchWait)))
		if err == nil && len(msgs) > 0 && want > 1 {
			var more []jetstream.Msg
			more, err = collect(src.FetchNoWait(want - 1))
			msgs = append(msgs, more...)
		}
	}
	if err != nil && !errors.Is(err, nats.ErrTimeout) {
		s.log.Warn("fetch from NOVU failed; retrying", "err", err)
		sleep(ctx, s.cfg.FetchWait)
	}
	for _, m := range msgs {
		s.inHand.add(m)
	}
	return msgs
}

// collect reads a whole batch.
func collect(b jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, b.Error()
}

// giveBack NAKs a message that was never worked on, for immediate redelivery.
func (s *Sink) giveBack(msg jetstream.Msg) {
	s.inHand.remove(msg)
	if err := msg.Nak(); err != nil {
		s.log.Debug("nak failed; the message comes back after the ack wait", "err", err)
	}
	s.m.triggers.WithLabelValues(outcomeRetried, statusNotSent).Inc()
}
