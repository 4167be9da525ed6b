package consume

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of [Config].
const (
	// DefaultConcurrency is how many handler calls run at once.
	DefaultConcurrency = 16
	// DefaultMaxDeliver is the delivery on which a Retry becomes a dead letter.
	DefaultMaxDeliver = 10
	// DefaultAckWait is the consumer's ack wait, when Config does not say.
	DefaultAckWait = 30 * time.Second
	// DefaultBackoffMin and DefaultBackoffMax bound the backoff of a Retry.
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = time.Minute
	// DefaultFetchWait bounds how long one pull waits for a first message.
	DefaultFetchWait = time.Second
	// DefaultPublishTimeout bounds a dead letter's publish and its PubAck.
	DefaultPublishTimeout = 5 * time.Second
	// DefaultShutdownTimeout is [Runtime.Run]'s drain budget.
	DefaultShutdownTimeout = 20 * time.Second
	// MaxDeliverHeadroom is how many deliveries the consumer's server-side
	// MaxDeliver allows past the runtime's Config.MaxDeliver: the runtime
	// dead-letters on its last delivery, and if that dead letter cannot be
	// stored (DLQ unreachable) the message is NAKed and tried again, up to
	// this many more times, before the server stops delivering it (a
	// MAX_DELIVERIES advisory; the message stays in its stream). Messages
	// NAKed unstarted at a shutdown also use a delivery each.
	MaxDeliverHeadroom = 3
)

// ServerMaxDeliver returns the consumer's server-side MaxDeliver for a
// runtime that dead-letters on delivery maxDeliver: maxDeliver +
// [MaxDeliverHeadroom].
func ServerMaxDeliver(maxDeliver int) int {
	if maxDeliver <= 0 {
		maxDeliver = DefaultMaxDeliver
	}
	return maxDeliver + MaxDeliverHeadroom
}

// Config tunes a [Runtime]. Zero fields get the defaults above.
type Config struct {
	// Stage is the dead letters' stage, [events.StageRouter] or
	// [events.StageSink]; required.
	Stage string
	// Suffix returns the dead letter's subject suffix for a source subject
	// (dlq.<stage>.<suffix>): the router's event type, the sink's workflow
	// id. Default: the subject without its first token.
	Suffix func(subject string) string
	// Concurrency bounds the handler calls running at once (a batch is one).
	Concurrency int
	// AckWait is the consumer's ack wait; a message in hand gets an
	// InProgress every AckWait/3.
	AckWait time.Duration
	// MaxDeliver is the delivery on which a Retry becomes a dead letter. Give
	// the consumer [ServerMaxDeliver] of it.
	MaxDeliver int
	// BackoffMin and BackoffMax bound a Retry's delay when the handler leaves
	// it to the runtime: BackoffMin doubled per delivery, at most BackoffMax,
	// jittered ([events.Backoff]). BackoffMin is also the length of a Pause
	// with no end.
	BackoffMin, BackoffMax time.Duration
	// FetchWait bounds how long one pull waits for a first message, and so
	// how long a stop waits for the pull in flight.
	FetchWait time.Duration
	// PublishTimeout bounds a dead letter's publish and its PubAck.
	PublishTimeout time.Duration
	// ConfirmAcks waits for the server to confirm each ack (a second round
	// trip), trying again for up to AckWait while it is not confirmed, as
	// after a consumer leader change. Set it where the handler's effect is
	// not deduplicated by JetStream itself (the sink's Novu calls); without
	// it an ack is sent once, and a lost ack means a redelivery that the
	// next stream's Nats-Msg-Id window drops (the router).
	ConfirmAcks bool
	// ShutdownTimeout is [Runtime.Run]'s drain budget; [Runtime.Stop] takes
	// its deadline from its context instead.
	ShutdownTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Suffix == nil {
		c.Suffix = func(subject string) string {
			if _, rest, ok := strings.Cut(subject, "."); ok {
				return rest
			}
			return subject
		}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(c.BackoffMin, DefaultBackoffMax)
	}
	if c.FetchWait <= 0 {
		c.FetchWait = DefaultFetchWait
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
}

// Source is the durable pull consumer the runtime pulls from;
// jetstream.Consumer satisfies it.
type Source interface {
	Fetch(batch int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error)
	FetchNoWait(batch int) (jetstream.MessageBatch, error)
}

var _ Source = jetstream.Consumer(nil)

// Publisher stores dead letters and returns their PubAck;
// jetstream.JetStream satisfies it.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

var _ Publisher = jetstream.JetStream(nil)

// conner is a Publisher that knows its connection, and so max_payload.
type conner interface{ Conn() *nats.Conn }

// Gate is consulted before every pull: Wait blocks until the runtime may
// pull, and returns how many messages (1 to n) it may pull now, or an error
// once ctx is done. The sink's gate waits while its breaker is open, lets
// one probe through half-open, and waits for rate-limit tokens, so the
// backlog stays in the stream while Novu is out.
type Gate interface {
	Wait(ctx context.Context, n int) (int, error)
}

// GateFunc adapts a function to a [Gate].
type GateFunc func(ctx context.Context, n int) (int, error)

// Wait calls f.
func (f GateFunc) Wait(ctx context.Context, n int) (int, error) { return f(ctx, n) }

// Outcome is what the runtime did with a message.
type Outcome uint8

// Outcomes, passed to the [Observer].
const (
	// Acked: acknowledged (its effect is stored).
	Acked Outcome = iota + 1
	// Retried: NAKed with a delay, or left for redelivery after the ack wait
	// when even the NAK failed.
	Retried
	// DeadLettered: stored in DLQ, then terminated.
	DeadLettered
	// Paused: held in hand after a Pause; not final, the handler is called
	// again.
	Paused
	// Returned: NAKed at shutdown, held or never handled, for another
	// instance; not the message's fault.
	Returned
)

// String returns acked, retried, dead_lettered, paused or returned.
func (o Outcome) String() string {
	switch o {
	case Acked:
		return "acked"
	case Retried:
		return "retried"
	case DeadLettered:
		return "dead_lettered"
	case Paused:
		return "paused"
	case Returned:
		return "returned"
	}
	return "unknown"
}

// Settlement is how a message was settled.
type Settlement struct {
	// Outcome is what the runtime did.
	Outcome Outcome
	// Reason is the dead letter's reason, or the Retry's or Pause's cause.
	Reason string
	// Delay is a Retry's NAK delay.
	Delay time.Duration
	// Err is a settling failure: an ack or NAK that did not reach the server
	// (the message comes back after the ack wait), or a dead letter the DLQ
	// did not store (the message is retried).
	Err error
}

// Observer is told of every settlement (and every Pause), after it is done
// and inside the message's process span: the services count their metrics
// here. v is the handler's verdict (a zero Verdict when the handler never
// ran: a message returned at shutdown).
type Observer func(ctx context.Context, m *Message, v Verdict, s Settlement)

// Option configures a [Runtime].
type Option func(*Runtime)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(r *Runtime) {
		if l != nil {
			r.log = l
		}
	}
}

// WithTracing starts a consumer span ("process <subject>", a child of the
// trace context in the message's headers, extracted with prop) around each
// handler call and its settling; the dead letter's publish span is its
// child. tracer names the service's scope.
func WithTracing(tracer trace.Tracer, prop propagation.TextMapPropagator) Option {
	return func(r *Runtime) {
		if tracer != nil {
			r.tracer = tracer
		}
		if prop != nil {
			r.prop = prop
		}
	}
}

// WithAttributes adds attrs(m) to the process span of each message and to
// its dead letter's publish span (the router's svix id and event type, the
// sink's workflow and transaction id), so both can be found by them.
func WithAttributes(attrs func(m *Message) []attribute.KeyValue) Option {
	return func(r *Runtime) { r.attrs = attrs }
}

// WithGate sets the gate consulted before every pull (default: always open).
func WithGate(g Gate) Option { return func(r *Runtime) { r.gate = g } }

// WithObserver sets the function told of every settlement.
func WithObserver(o Observer) Option { return func(r *Runtime) { r.observe = o } }

// WithBatch hands h every run of at least minBatch messages in hand, up to
// maxBatch in one call, as one unit of work; smaller runs go to the
// single-message handler. With it, each pull asks for up to maxBatch
// messages. The verdicts are applied one by one as usual.
func WithBatch(minBatch, maxBatch int, h BatchHandlerFunc) Option {
	return func(r *Runtime) {
		maxBatch = max(maxBatch, 1)
		r.batch = &batching{min: min(max(minBatch, 1), maxBatch), max: maxBatch, handle: h}
	}
}

// batching is [WithBatch]'s setting.
type batching struct {
	min, max int
	handle   BatchHandlerFunc
}
