// Package consume is the router's transport: it reads Clerk events from the
// durable pull consumer on CLERK, calls the pure [route] package, publishes
// one trigger command per workflow on novu.trigger.<workflowId> (stream NOVU),
// and acks the event only once every command is stored. [Handler.Handle] is
// a handler of the shared consume runtime (pkg/runtime/consume), which owns
// the pull loop, the keep-alive and settling: the handler only decides, an
// Ack (routed or skipped), a Retry with the runtime's backoff, or a
// DeadLetter for what no retry can fix.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	rtconsume "github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/services/router/route"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
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
	// OutcomeDeadLettered is an event stored in the DLQ with its reason, then
	// terminated (TermWithReason), never acked as if delivered.
	OutcomeDeadLettered = "dead_lettered"
	// OutcomeRetried is a delivery that failed and was NAKed with a delay.
	OutcomeRetried = "retried"
	// OutcomeReturned is an event NAKed unhandled at shutdown, for another instance.
	OutcomeReturned = "returned"
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
			Help: "Clerk event deliveries settled, by event type (Clerk's catalog, else other) and outcome (routed, skipped, dead_lettered, retried, returned).",
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

// Outcome label of an acked event no rule routes, set on its verdict.
const labelSkipped = OutcomeSkipped

// Handle routes one event and publishes its commands, and returns what to do
// with it: Ack once every command is stored (labelled skipped when no rule
// routes it), DeadLetter for what no retry can fix (an invalid event, no
// recipient, a command larger than the server takes), Retry otherwise. It
// never panics on bad input; the runtime's process span is in ctx.
func (h *Handler) Handle(ctx context.Context, msg *rtconsume.Message) rtconsume.Verdict {
	d := newDelivery(msg)
	err := h.process(ctx, msg, &d)
	trace.SpanFromContext(ctx).SetAttributes(events.EventTypeKey.String(d.eventType)) // the parsed type
	switch {
	case err == nil:
		return rtconsume.Ack()
	case errors.Is(err, route.ErrNoRoute):
		h.log.DebugContext(ctx, "event not routed", "svix_id", d.svixID, "type", d.eventType, "reason", err.Error())
		return rtconsume.Ack().WithLabel(labelSkipped)
	case permanent(err):
		return rtconsume.DeadLetter(err.Error())
	}
	return rtconsume.Retry(0, err)
}

// Observe counts each settlement in router_events_total; the type label is
// bounded to Clerk's catalog plus "other", so a flood of made-up types adds
// one series, not one per type.
func (h *Handler) Observe(_ context.Context, msg *rtconsume.Message, v rtconsume.Verdict, s rtconsume.Settlement) {
	var outcome string
	switch s.Outcome {
	case rtconsume.Acked:
		outcome = OutcomeRouted
		if v.Label() == labelSkipped {
			outcome = OutcomeSkipped
		}
	case rtconsume.DeadLettered:
		outcome = OutcomeDeadLettered
	case rtconsume.Retried:
		outcome = OutcomeRetried
	case rtconsume.Returned:
		outcome = OutcomeReturned
	default:
		return
	}
	typ, _ := events.EventTypeFromSubject(msg.Subject)
	h.metrics.Events.WithLabelValues(typeLabel(typ), outcome).Inc()
}

// SpanAttributes are the svix id and event type of msg, on its process span
// and its dead letter's publish span.
func (h *Handler) SpanAttributes(msg *rtconsume.Message) []attribute.KeyValue {
	d := newDelivery(msg)
	return []attribute.KeyValue{events.SvixIDKey.String(d.svixID), events.EventTypeKey.String(d.eventType)}
}

// typeLabel is typ when Clerk's catalog lists it, else [OtherType].
func typeLabel(typ string) string {
	if events.InCatalog(typ) {
		return typ
	}
	return OtherType
}

// OtherType is the type label of every event type not in Clerk's catalog.
const OtherType = "other"

// delivery is what the transport knows about one message.
type delivery struct {
	svixID     string
	eventType  string
	deliveries uint64
	sequence   uint64
	receivedAt int64
}

func newDelivery(msg *rtconsume.Message) delivery {
	h := msg.Header
	d := delivery{deliveries: msg.NumDelivered, sequence: msg.Sequence}
	d.svixID = h.Get(events.SvixIDHeader)
	if d.svixID == "" {
		d.svixID = h.Get(jetstream.MsgIDHeader)
	}
	if typ, ok := events.EventTypeFromSubject(msg.Subject); ok {
		d.eventType = typ
	}
	if d.svixID == "" && d.sequence > 0 {
		// Published without an id (a manual nats pub): the stream sequence
		// is stable across redeliveries, so transaction ids stay deterministic.
		d.svixID = "seq-" + events.StreamClerk + "-" + strconv.FormatUint(d.sequence, 10)
	}
	if v := h.Get(events.ReceivedAtHeader); v != "" {
		d.receivedAt, _ = strconv.ParseInt(v, 10, 64)
	}
	return d
}

// process routes the event and publishes its commands. It returns nil once
// every command is stored.
func (h *Handler) process(ctx context.Context, msg *rtconsume.Message, d *delivery) error {
	ev, err := events.ParseEvent(msg.Data)
	if err != nil {
		return err
	}
	d.eventType = ev.Type
	rules := h.rules.Current()
	src := route.Source{SvixID: d.svixID, ReceivedAt: d.receivedAt}
	cmds, syncs, err := route.Plan(rules, ev, src, h.cfg.Build)
	if err != nil {
		return err // ErrNoRoute: not routed, nothing to sync: skipped
	}
	return h.publishAll(ctx, cmds, syncs, msg.Header)
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

// publish stores one command in NOVU, deduplicated by its transactionId.
func (h *Handler) publish(ctx context.Context, c events.TriggerCommand, src nats.Header) error {
	subject, err := events.NovuTriggerSubject(c.WorkflowID)
	if err != nil {
		return err
	}
	body, err := events.EncodeCommand(c)
	if err != nil {
		return err
	}
	m := newCommandMsg(subject, body, c.TransactionID, c.SvixID, c.EventType, src)
	m.Header.Set(events.WorkflowIDHeader, c.WorkflowID)
	m.Header.Set(events.TransactionIDHeader, c.TransactionID)
	ack, err := h.store(ctx, m, events.WorkflowIDKey.String(c.WorkflowID), events.TransactionIDKey.String(c.TransactionID),
		events.SvixIDKey.String(c.SvixID), events.EventTypeKey.String(c.EventType))
	if err != nil {
		return err
	}
	if ack.Duplicate {
		h.metrics.Duplicates.WithLabelValues(c.WorkflowID).Inc()
	} else {
		h.metrics.Commands.WithLabelValues(c.WorkflowID).Inc()
	}
	return nil
}

// publishSync stores one sync command in NOVU, deduplicated by its id.
func (h *Handler) publishSync(ctx context.Context, c events.SyncCommand, src nats.Header) error {
	subject, err := events.NovuSyncSubject(c.Kind)
	if err != nil {
		return err
	}
	body, err := events.EncodeSyncCommand(c)
	if err != nil {
		return err
	}
	m := newCommandMsg(subject, body, c.ID, c.SvixID, c.EventType, src)
	ack, err := h.store(ctx, m, events.SvixIDKey.String(c.SvixID), events.EventTypeKey.String(c.EventType))
	if err != nil {
		return err
	}
	h.metrics.Syncs.WithLabelValues(c.Kind, strconv.FormatBool(ack.Duplicate)).Inc()
	return nil
}

// newCommandMsg is a command message with the headers every command
// carries: its id as Nats-Msg-Id, the svix-id, the event type and, from the
// event's headers src, when the receiver accepted it.
func newCommandMsg(subject string, body []byte, id, svixID, eventType string, src nats.Header) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Header.Set(events.SvixIDHeader, svixID)
	m.Header.Set(events.EventTypeHeader, eventType)
	if v := src.Get(events.ReceivedAtHeader); v != "" {
		m.Header.Set(events.ReceivedAtHeader, v)
	}
	return m
}

// store publishes m to NOVU within the publish timeout, in a producer span
// with attrs, and returns its PubAck.
func (h *Handler) store(ctx context.Context, m *nats.Msg, attrs ...attribute.KeyValue) (ack *jetstream.PubAck, err error) {
	ctx, span := events.StartPublish(ctx, h.tracer, h.propagator, m, attrs...)
	defer func() { events.EndSpan(span, err) }()
	ctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	defer cancel()
	if ack, err = h.pub.PublishMsg(ctx, m, jetstream.WithExpectStream(events.StreamNovu)); err != nil {
		return nil, fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	return ack, nil
}

// permanent reports errors that no retry can fix: the event goes to the DLQ.
// A command the server refuses as too large ("maximum payload exceeded") is
// one: the runtime's dead letter, cut to fit, keeps a pointer to the event.
// A failed rule expression ([route.ErrExpression]) matches
// [events.ErrInvalidEvent] too.
func permanent(err error) bool {
	return errors.Is(err, events.ErrInvalidEvent) || errors.Is(err, route.ErrNoRecipient) ||
		errors.Is(err, route.ErrInvalidWorkflow) || errors.Is(err, events.ErrInvalidCommand) ||
		errors.Is(err, events.ErrInvalidSubject) ||
		errors.Is(err, events.ErrInvalidSyncCommand) || rtconsume.IsPermanent(err)
}
