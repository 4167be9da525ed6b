package consume

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	rt "github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/outcome"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/syncorder"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// SyncNotifier makes Novu's subscriber and topic calls; *novu.Client implements it.
type SyncNotifier interface {
	UpsertSubscriber(ctx context.Context, s *events.Subscriber) outcome.Answer
	DeleteSubscriber(ctx context.Context, id string) outcome.Answer
	AddSubscriptions(ctx context.Context, key string, ids []string) outcome.Answer
	RemoveSubscriptions(ctx context.Context, key string, ids []string) outcome.Answer
	DeleteTopic(ctx context.Context, key string) outcome.Answer
}

var _ SyncNotifier = (*novu.Client)(nil)

// errSyncState is the cause of a pause while the sync state bucket fails.
var errSyncState = errors.New("sync state unavailable")

// syncSkipped prefixes the label of a sync command skipped by syncorder.
const syncSkipped = "skipped:"

// SyncDeps are the sync sink's collaborators.
type SyncDeps struct {
	// Logger, TracerProvider, Propagator, Registerer and Publisher as in
	// [Deps]; Deps.Notifier is not used.
	Deps
	// SyncNotifier calls Novu; required unless Config.DryRun.
	SyncNotifier SyncNotifier
	// State is the NOVU_SYNC_STATE bucket that orders the commands; required.
	State syncorder.KV
	// Owner names this instance in the sync state's leases.
	Owner string
}

// SyncSink consumes subscriber and topic sync commands (durable
// novu-sink-sync) on its own consume runtime, with its own breaker and its
// own rate limiter: Novu puts these calls in its "configuration" category,
// so a 429 there pauses only the sync, never the triggers. Commands are
// applied in order through [syncorder.Guard].
type SyncSink struct {
	*Sink
	notifier SyncNotifier
	guard    *syncorder.Guard
	commands *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewSync builds a sync sink and registers its metrics. cfg.RateLimit is
// the configuration category's limit (calls per second); Bulk is ignored.
func NewSync(cfg Config, deps SyncDeps) (*SyncSink, error) {
	cfg.Bulk = false
	gate := newGateMetrics("sink_sync_", "Novu's subscriber and topic calls")
	orderMetrics := syncorder.NewMetrics()
	s := &SyncSink{
		notifier: deps.SyncNotifier,
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sink_sync_commands_total",
			Help: "Sync commands handled, by kind, outcome (delivered, skipped, retried, dead_lettered, dry_run; paused and returned are not final) and Novu HTTP status.",
		}, []string{"kind", "outcome", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sink_sync_request_duration_seconds",
			Help:    "Duration of Novu's subscriber and topic calls, by kind.",
			Buckets: prometheus.ExponentialBucketsRange(0.005, 30, 14),
		}, []string{"kind"}),
	}
	base := deps.Deps
	base.Notifier = nil // not the sync sink's: it makes no trigger calls
	sink, err := newSink(cfg, base, sinkParts{
		hasNotifier: deps.SyncNotifier != nil,
		check: func() error {
			if deps.State == nil {
				return fmt.Errorf("%w: no sync state bucket", ErrMisconfigured)
			}
			return nil
		},
		consumer:   events.DurableSinkSync,
		gate:       &gate,
		collectors: append([]prometheus.Collector{s.commands, s.duration}, orderMetrics.Collectors()...),
		what:       "sync sink",
	})
	if err != nil {
		return nil, err
	}
	s.Sink = sink
	lease := 3*s.cfg.AckWait/2 + time.Second // longer than any Novu call, which the ack wait bounds
	s.guard = syncorder.New(deps.State, syncorder.Config{Owner: deps.Owner, Lease: lease}, s.log, orderMetrics)
	return s, nil
}

// Run consumes sync commands from src (the novu-sink-sync consumer) until
// ctx is done, as [Sink.Run] does for triggers.
func (s *SyncSink) Run(ctx context.Context, src Source) error {
	return s.run(ctx, src, syncSuffix, s.handleSync, s.observeSync)
}

// handleSync is the runtime's handler of one sync command: skipped when the
// sync state says it is out of date, else one Novu call judged by
// [outcome.ClassifySync].
func (s *SyncSink) handleSync(_ context.Context, m *rt.Message) rt.Verdict {
	cmd, err := events.ParseSyncCommand(m.Data)
	if err != nil {
		return rt.DeadLetter(err.Error()).WithLabel(statusInvalid)
	}
	ctx := m.Context()
	if s.cfg.DryRun {
		s.log.InfoContext(ctx, "dry run: would sync Novu", "kind", cmd.Kind, "subscriber_id", cmd.SubscriberKey(), "topic_key", cmd.TopicKey, "svix_id", cmd.SvixID)
		return rt.Ack().WithLabel(statusNone)
	}
	// Wait for the rate limit before taking the object's lease: a wait can
	// last minutes after a 429, past the lease, and another instance could
	// then take it and apply a newer command before this older one reaches
	// Novu. A command the guard then skips has spent its token.
	if err := s.limiter.wait(s.stopping, singleCost); err != nil {
		return rt.Pause(time.Time{}, errStopping).WithLabel(statusNotSent)
	}
	var v rt.Verdict
	d, err := s.guard.Apply(ctx, cmd, func(ctx context.Context) bool {
		v = s.call(ctx, m, cmd)
		return v.Kind() == rt.KindAck
	})
	switch {
	case errors.Is(err, syncorder.ErrBusy):
		return rt.Retry(s.cfg.RetryBase, err).WithLabel(statusNotSent)
	case err != nil && s.stopping.Err() != nil:
		return rt.Pause(time.Time{}, errStopping).WithLabel(statusNotSent)
	case err != nil:
		// The bucket is out, not the message: hold it without using a delivery.
		return rt.Pause(time.Now().Add(s.cfg.RetryBase), fmt.Errorf("%w: %w", errSyncState, err)).WithLabel(statusNotSent)
	case d.Skipped:
		return rt.Ack().WithLabel(syncSkipped + d.Reason)
	}
	return v
}

// call makes the Novu call of cmd, once the rate limit let it go, and
// returns its verdict.
func (s *SyncSink) call(ctx context.Context, m *rt.Message, cmd events.SyncCommand) rt.Verdict {
	done, err := s.breaker.allow(cmd.ID, m.NumDelivered+1 < uint64(s.cfg.MaxDeliver))
	if err != nil {
		return s.refused(err)
	}
	start := time.Now()
	var ans outcome.Answer
	switch cmd.Kind {
	case events.SyncSubscriberUpsert:
		ans = s.notifier.UpsertSubscriber(ctx, cmd.Subscriber)
	case events.SyncSubscriberDelete:
		ans = s.notifier.DeleteSubscriber(ctx, cmd.SubscriberID)
	case events.SyncTopicAdd:
		ans = s.notifier.AddSubscriptions(ctx, cmd.TopicKey, []string{cmd.SubscriberID})
	case events.SyncTopicRemove:
		ans = s.notifier.RemoveSubscriptions(ctx, cmd.TopicKey, []string{cmd.SubscriberID})
	case events.SyncTopicDelete:
		ans = s.notifier.DeleteTopic(ctx, cmd.TopicKey)
	}
	s.duration.WithLabelValues(cmd.Kind).Observe(time.Since(start).Seconds())
	now := time.Now()
	res := outcome.ClassifySync(cmd.Kind, ans, now)
	s.afterCall(done, res, ans, now)
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(outcomeKey.String(res.Action.String()), httpCodeKey.Int(res.StatusCode))
	return s.verdictOf(cmd.ID, m.NumDelivered, res, rand.Float64(), now)
}

// observeSync counts every settlement by kind.
func (s *SyncSink) observeSync(_ context.Context, m *rt.Message, v rt.Verdict, st rt.Settlement) {
	kind := strings.TrimPrefix(m.Subject, events.NovuSyncSubjectPrefix)
	out, status := s.labels(v, st)
	if reason, ok := strings.CutPrefix(status, syncSkipped); ok && st.Outcome == rt.Acked {
		out, status = "skipped", reason
	}
	s.commands.WithLabelValues(kind, out, status).Inc()
}

// syncSuffix is the dead letter's subject suffix of a sync subject
// novu.sync.<kind>...: sync.<kind>..., so dead letters land on
// dlq.sink.sync.<kind>... apart from triggers' dlq.sink.<workflowId>.
func syncSuffix(subject string) string {
	return "sync." + strings.TrimPrefix(subject, events.NovuSyncSubjectPrefix)
}
