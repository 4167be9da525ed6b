// Package consume is the router's transport: it reads Clerk events from the
// durable pull consumer on CLERK, calls the pure [route] package, publishes
// one trigger command per workflow on novu.trigger.<workflowId> (stream NOVU),
// and acks the event only once every command is stored. Every outcome goes
// through one function, [Handler.settle]: acked (routed or skipped), retried
// with exponential backoff, or dead-lettered to stream DLQ with a reason.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/router/route"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the router's spans.
const ScopeName = "github.com/clerknovu/pipeline/services/router"

// Publisher stores a message in a stream and returns its PubAck;
// jetstream.JetStream satisfies it.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

var _ Publisher = jetstream.JetStream(nil)

// Rules returns the routing rules in force; *rulesource.Source satisfies it.
type Rules interface {
	Current() *route.Rules
}

// Outcomes of one delivery, the outcome label of router_events_total.
const (
	// OutcomeRouted is an event whose commands are all stored, then acked.
	OutcomeRouted = "routed"
	// OutcomeSkipped is an event no rule routes, acked.
	OutcomeSkipped = "skipped"
	// OutcomeDeadLettered is an event stored in the DLQ with its reason, then acked.
	OutcomeDeadLettered = "dead_lettered"
	// OutcomeRetried is a delivery that failed and was NAKed with a delay.
	OutcomeRetried = "retried"
)

// Metrics are the router's counters.
type Metrics struct {
	// Events is router_events_total{type,outcome}.
	Events *prometheus.CounterVec
	// Commands is router_commands_published_total{workflow}.
	Commands *prometheus.CounterVec
	// Duplicates is router_commands_duplicate_total{workflow}: commands NOVU
	// already held (a redelivered event), so Novu is not triggered twice.
	Duplicates *prometheus.CounterVec
	// Syncs is router_sync_commands_published_total{kind,duplicate}:
	// subscriber and topic sync commands stored in NOVU.
	Syncs *prometheus.CounterVec
}

// NewMetrics returns unregistered counters.
func NewMetrics() *Metrics {
	return &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "router_events_total",
			Help: "Clerk event deliveries handled, by event type and outcome (routed, skipped, dead_lettered, retried).",
		}, []string{"type", "outcome"}),
		Commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "router_commands_published_total",
			Help: "Trigger commands stored in stream NOVU, by workflow.",
		}, []string{"workflow"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "router_commands_duplicate_total",
			Help: "Trigger commands NOVU already held (same transactionId), by workflow.",
		}, []string{"workflow"}),
		Syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "router_sync_commands_published_total",
			Help: "Subscriber and topic sync commands stored in stream NOVU, by kind, and whether NOVU already held them (duplicate).",
		}, []string{"kind", "duplicate"}),
	}
}

// Collectors lists the counters, for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Events, m.Commands, m.Duplicates, m.Syncs}
}

// Config tunes a [Handler].
type Config struct {
	// MaxDeliver is the delivery on which a still-failing event goes to the DLQ
	// instead of being retried again (default 10).
	MaxDeliver int
	// PublishTimeout bounds each publish, PubAck included (default 5s).
	PublishTimeout time.Duration
	// BackoffMin and BackoffMax bound the redelivery delay after a failure:
	// BackoffMin doubled per delivery, at most BackoffMax (defaults 1s, 1m).
	BackoffMin, BackoffMax time.Duration
	// Build are the subscriber settings (the default locale).
	Build route.BuildOptions
}

func (c *Config) setDefaults() {
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = time.Second
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(c.BackoffMin, time.Minute)
	}
}

// Handler handles one Clerk event delivery from start to ack.
type Handler struct {
	cfg        Config
	pub        Publisher
	rules      Rules
	log        *slog.Logger
	metrics    *Metrics
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// Option configures a [Handler].
type Option func(*Handler)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// WithMetrics sets the counters (default: new, unregistered).
func WithMetrics(m *Metrics) Option { return func(h *Handler) { h.metrics = m } }

// WithTracing sets the tracer provider and propagator (default: no spans, W3C
// trace context still passed from the event to the commands).
func WithTracing(tp trace.TracerProvider, p propagation.TextMapPropagator) Option {
	return func(h *Handler) {
		if tp != nil {
			h.tracer = tp.Tracer(ScopeName)
		}
		if p != nil {
			h.propagator = p
		}
	}
}

// NewHandler returns a Handler that publishes with pub under rules.
func NewHandler(cfg Config, pub Publisher, rules Rules, opts ...Option) *Handler {
	cfg.setDefaults()
	h := &Handler{
		cfg:        cfg,
		pub:        pub,
		rules:      rules,
		log:        slog.New(slog.DiscardHandler),
		metrics:    NewMetrics(),
		tracer:     noop.NewTracerProvider().Tracer(ScopeName),
		propagator: propagation.TraceContext{},
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// errDeliveries is wrapped, with the last failure, once an event has failed
// on its last allowed delivery.
var errDeliveries = errors.New("gave up")

// Handle processes one delivery and settles it: ack, nak with delay, or
// dead-letter then ack. It never panics on bad input and returns nothing: the
// outcome is in the metrics, the logs and the span.
func (h *Handler) Handle(ctx context.Context, msg jetstream.Msg) {
	d := newDelivery(msg)
	ctx, span := events.StartProcess(ctx, h.tracer, h.propagator, msg.Subject(), msg.Headers(),
		events.SvixIDKey.String(d.svixID), events.EventTypeKey.String(d.eventType))
	err := h.process(ctx, msg, &d)
	outcome, spanErr := h.settle(ctx, msg, &d, err)
	h.metrics.Events.WithLabelValues(d.eventType, outcome).Inc()
	events.EndSpan(span, spanErr)
}

// delivery is what the transport knows about one message.
type delivery struct {
	svixID     string
	eventType  string
	deliveries uint64
	sequence   uint64
	receivedAt int64
}

func newDelivery(msg jetstream.Msg) delivery {
	h := msg.Headers()
	d := delivery{deliveries: 1}
	d.svixID = h.Get(events.SvixIDHeader)
	if d.svixID == "" {
		d.svixID = h.Get(jetstream.MsgIDHeader)
	}
	if typ, ok := events.EventTypeFromSubject(msg.Subject()); ok {
		d.eventType = typ
	}
	if md, err := msg.Metadata(); err == nil {
		d.deliveries = md.NumDelivered
		d.sequence = md.Sequence.Stream
		if d.svixID == "" && d.sequence > 0 {
			// Published without an id (a manual nats pub): the stream sequence
			// is stable across redeliveries, so transaction ids stay deterministic.
			d.svixID = "seq-" + events.StreamClerk + "-" + strconv.FormatUint(d.sequence, 10)
		}
	}
	if v := h.Get(events.ReceivedAtHeader); v != "" {
		d.receivedAt, _ = strconv.ParseInt(v, 10, 64)
	}
	return d
}

// process routes the event and publishes its commands. It returns nil once
// every command is stored.
func (h *Handler) process(ctx context.Context, msg jetstream.Msg, d *delivery) error {
	ev, err := events.ParseEvent(msg.Data())
	if err != nil {
		return err
	}
	d.eventType = ev.Type
	rules := h.rules.Current()
	src := route.Source{SvixID: d.svixID, ReceivedAt: d.receivedAt}
	targets, routeErr := route.Route(rules, ev)
	if routeErr != nil && !errors.Is(routeErr, route.ErrNoRoute) {
		return routeErr
	}
	syncs, err := route.SyncCommands(rules.Sync(), ev, src, h.cfg.Build)
	if err != nil {
		return err
	}
	if routeErr != nil && len(syncs) == 0 {
		return routeErr // not routed, nothing to sync: skipped
	}
	var cmds []events.TriggerCommand
	if routeErr == nil {
		if cmds, err = route.Commands(ev, src, targets, h.cfg.Build); err != nil {
			return err
		}
	}
	return h.publishAll(ctx, cmds, syncs, msg.Headers())
}

// publishAll publishes every trigger and sync command at once and waits
// for every PubAck: the event is acked only once all are stored.
func (h *Handler) publishAll(ctx context.Context, cmds []events.TriggerCommand, syncs []events.SyncCommand, src nats.Header) error {
	if len(cmds) == 1 && len(syncs) == 0 {
		return h.publish(ctx, cmds[0], src)
	}
	errs := make([]error, len(cmds)+len(syncs))
	var wg sync.WaitGroup
	for i, c := range cmds {
		wg.Go(func() { errs[i] = h.publish(ctx, c, src) })
	}
	for i, c := range syncs {
		wg.Go(func() { errs[len(cmds)+i] = h.publishSync(ctx, c, src) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// publishSync stores one sync command in NOVU, deduplicated by its id.
func (h *Handler) publishSync(ctx context.Context, c events.SyncCommand, src nats.Header) (err error) {
	subject, err := events.NovuSyncSubject(c.Kind)
	if err != nil {
		return err
	}
	body, err := events.EncodeSyncCommand(c)
	if err != nil {
		return err
	}
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, c.ID)
	m.Header.Set(events.SvixIDHeader, c.SvixID)
	m.Header.Set(events.EventTypeHeader, c.EventType)
	if v := src.Get(events.ReceivedAtHeader); v != "" {
		m.Header.Set(events.ReceivedAtHeader, v)
	}
	ctx, span := events.StartPublish(ctx, h.tracer, h.propagator, m, events.SvixIDKey.String(c.SvixID), events.EventTypeKey.String(c.EventType))
	defer func() { events.EndSpan(span, err) }()
	ctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	defer cancel()
	ack, err := h.pub.PublishMsg(ctx, m, jetstream.WithExpectStream(events.StreamNovu))
	if err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	h.metrics.Syncs.WithLabelValues(c.Kind, strconv.FormatBool(ack.Duplicate)).Inc()
	return nil
}

// publish stores one command in NOVU, deduplicated by its transactionId.
func (h *Handler) publish(ctx context.Context, c events.TriggerCommand, src nats.Header) (err error) {
	subject, err := events.NovuTriggerSubject(c.WorkflowID)
	if err != nil {
		return err
	}
	body, err := route.Encode(c)
	if err != nil {
		return err
	}
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, c.TransactionID)
	m.Header.Set(events.SvixIDHeader, c.SvixID)
	m.Header.Set(events.EventTypeHeader, c.EventType)
	m.Header.Set(events.WorkflowIDHeader, c.WorkflowID)
	m.Header.Set(events.TransactionIDHeader, c.TransactionID)
	if v := src.Get(events.ReceivedAtHeader); v != "" {
		m.Header.Set(events.ReceivedAtHeader, v)
	}
	ctx, span := events.StartPublish(ctx, h.tracer, h.propagator, m, events.WorkflowIDKey.String(c.WorkflowID), events.TransactionIDKey.String(c.TransactionID),
		events.SvixIDKey.String(c.SvixID), events.EventTypeKey.String(c.EventType))
	defer func() { events.EndSpan(span, err) }()
	ctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	defer cancel()
	ack, err := h.pub.PublishMsg(ctx, m, jetstream.WithExpectStream(events.StreamNovu))
	if err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	if ack.Duplicate {
		h.metrics.Duplicates.WithLabelValues(c.WorkflowID).Inc()
	} else {
		h.metrics.Commands.WithLabelValues(c.WorkflowID).Inc()
	}
	return nil
}

// permanent reports errors that no retry can fix: the event goes to the DLQ.
func permanent(err error) bool {
	return errors.Is(err, events.ErrInvalidEvent) || errors.Is(err, route.ErrNoRecipient) ||
		errors.Is(err, route.ErrInvalidWorkflow) || errors.Is(err, events.ErrInvalidCommand) ||
		errors.Is(err, events.ErrInvalidSubject) || errors.Is(err, route.ErrExpression) ||
		errors.Is(err, events.ErrInvalidSyncCommand)
}

// settle is the one place that acks: it maps err to ack (routed, skipped),
// dead-letter then ack, or nak with delay, and returns the outcome and the
// error to record on the span.
func (h *Handler) settle(ctx context.Context, msg jetstream.Msg, d *delivery, err error) (outcome string, spanErr error) {
	log := h.log.With("svix_id", d.svixID, "type", d.eventType, "delivery", d.deliveries)
	switch {
	case err == nil:
		h.ack(ctx, msg, log)
		return OutcomeRouted, nil
	case errors.Is(err, route.ErrNoRoute):
		log.DebugContext(ctx, "event not routed", "reason", err.Error())
		h.ack(ctx, msg, log)
		return OutcomeSkipped, nil
	case permanent(err):
		return h.deadLetter(ctx, msg, d, log, err.Error())
	case d.deliveries >= uint64(h.cfg.MaxDeliver):
		return h.deadLetter(ctx, msg, d, log, fmt.Sprintf("%v after %d deliveries: %v", errDeliveries, d.deliveries, err))
	}
	delay := events.Backoff(int(d.deliveries), h.cfg.BackoffMin, h.cfg.BackoffMax, rand.Float64())
	log.WarnContext(ctx, "event not routed yet: retrying", "err", err.Error(), "retry_in", delay)
	if nerr := msg.NakWithDelay(delay); nerr != nil {
		log.WarnContext(ctx, "nak failed: the event comes back after the ack wait", "err", nerr.Error())
	}
	return OutcomeRetried, err
}

// deadLetter stores the event in DLQ with reason, then acks it. If the DLQ
// cannot store it, the event is retried.
func (h *Handler) deadLetter(ctx context.Context, msg jetstream.Msg, d *delivery, log *slog.Logger, reason string) (string, error) {
	dl := events.DeadLetter{
		Stage:          events.StageRouter,
		Suffix:         d.eventType,
		Reason:         reason,
		Deliveries:     d.deliveries,
		SourceSubject:  msg.Subject(),
		SourceSequence: d.sequence,
	}
	m := dl.Msg(msg.Data(), msg.Headers())
	ctx, span := events.StartPublish(ctx, h.tracer, h.propagator, m, events.SvixIDKey.String(d.svixID), events.EventTypeKey.String(d.eventType))
	pctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	_, err := h.pub.PublishMsg(pctx, m, jetstream.WithExpectStream(events.StreamDLQ))
	cancel()
	events.EndSpan(span, err)
	if err != nil {
		delay := events.Backoff(int(d.deliveries), h.cfg.BackoffMin, h.cfg.BackoffMax, rand.Float64())
		log.ErrorContext(ctx, "dead letter not stored: retrying", "reason", reason, "err", err.Error(), "retry_in", delay)
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.WarnContext(ctx, "nak failed: the event comes back after the ack wait", "err", nerr.Error())
		}
		return OutcomeRetried, fmt.Errorf("dead-letter: %w", err)
	}
	log.WarnContext(ctx, "event dead-lettered", "reason", reason, "subject", m.Subject)
	h.ack(ctx, msg, log)
	return OutcomeDeadLettered, errors.New(reason)
}

// ack acks msg. A lost ack only means a redelivery, which NOVU's duplicate
// window absorbs (same Nats-Msg-Id), so it is logged, not retried.
func (h *Handler) ack(ctx context.Context, msg jetstream.Msg, log *slog.Logger) {
	if err := msg.Ack(); err != nil {
		log.WarnContext(ctx, "ack failed: the event will be redelivered and deduplicated", "err", err.Error())
	}
}
