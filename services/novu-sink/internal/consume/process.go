package consume

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/outcome"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// settleTimeout bounds an ack or a dead-letter publish.
const settleTimeout = 10 * time.Second

// Span attributes of the sink, next to [events.WorkflowIDKey] and friends.
const (
	outcomeKey   = attribute.Key("novu.outcome")
	statusKey    = attribute.Key("novu.status")
	httpCodeKey  = attribute.Key("http.response.status_code")
	bulkSizeKey  = attribute.Key("novu.bulk.size")
	deliveredKey = attribute.Key("messaging.nats.delivered")
)

// item is one fetched message on its way to Novu.
type item struct {
	msg        jetstream.Msg
	deliveries uint64
	sequence   uint64
	cmd        events.TriggerCommand
	ctx        context.Context // carries the process span; never canceled
	span       trace.Span
}

// prepare starts the process span of msg, under the trace context of its
// headers, and decodes the command. An undecodable command is dead-lettered
// here and prepare returns nil.
func (s *Sink) prepare(runCtx context.Context, msg jetstream.Msg) *item {
	it := &item{msg: msg, deliveries: 1}
	if meta, err := msg.Metadata(); err == nil {
		it.deliveries, it.sequence = meta.NumDelivered, meta.Sequence.Stream
	}
	// Calls, acks and dead letters finish even when the sink is stopping.
	it.ctx, it.span = events.StartProcess(context.WithoutCancel(runCtx), s.tracer, s.prop, msg.Subject(), msg.Headers(),
		deliveredKey.Int64(int64(it.deliveries)))
	cmd, err := events.ParseCommand(msg.Data())
	if err != nil {
		suffix, _ := strings.CutPrefix(msg.Subject(), events.NovuTriggerSubjectPrefix)
		it.cmd.WorkflowID = suffix
		r := outcome.Result{Action: outcome.DeadLetter, Reason: err.Error()}
		s.deadLetter(it, r, statusInvalid)
		return nil
	}
	it.cmd = cmd
	it.span.SetAttributes(events.WorkflowIDKey.String(cmd.WorkflowID),
		events.TransactionIDKey.String(cmd.TransactionID),
		events.SvixIDKey.String(cmd.SvixID))
	return it
}

// handleSingle sends one trigger and settles its message.
func (s *Sink) handleSingle(runCtx context.Context, it *item) {
	if s.cfg.DryRun {
		s.dryRun(it)
		return
	}
	if err := s.limiter.wait(runCtx, singleCost); err != nil {
		s.notSent(it, 0)
		return
	}
	done, err := s.breaker.allow(it.cmd.TransactionID)
	if err != nil {
		s.notSent(it, s.cfg.BreakerOpen)
		return
	}
	key := s.tracker.key(it.cmd.TransactionID)
	start := time.Now()
	ans := s.novu.Trigger(it.ctx, &it.cmd, key)
	s.m.requestDuration.WithLabelValues("trigger").Observe(time.Since(start).Seconds())
	now := time.Now()
	res := outcome.Classify(ans, now)
	s.afterCall(done, res, ans, now)
	if res.KeySpent {
		s.tracker.spend(it.cmd.TransactionID, key)
	}
	s.settle(it, res, rand.Float64())
}

// handleBulk sends up to 100 triggers in one call and settles each message by
// its own result.
func (s *Sink) handleBulk(runCtx context.Context, items []*item) {
	if len(items) == 0 {
		return
	}
	if err := s.limiter.wait(runCtx, bulkCost); err != nil {
		for _, it := range items {
			s.notSent(it, 0)
		}
		return
	}
	cmds := make([]*events.TriggerCommand, len(items))
	txIDs := make([]string, len(items))
	links := make([]trace.Link, len(items))
	for i, it := range items {
		cmds[i], txIDs[i] = &it.cmd, it.cmd.TransactionID
		links[i] = trace.Link{SpanContext: it.span.SpanContext()}
	}
	base := novu.BulkKey(txIDs)
	done, err := s.breaker.allow(base)
	if err != nil {
		for _, it := range items {
			s.notSent(it, s.cfg.BreakerOpen)
		}
		return
	}
	// The bulk call has its own trace, linked to every message's.
	ctx, span := s.tracer.Start(context.WithoutCancel(runCtx), "novu bulk trigger",
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithLinks(links...),
		trace.WithAttributes(bulkSizeKey.Int(len(items))))
	key := s.tracker.key(base)
	start := time.Now()
	ans := s.novu.TriggerBulk(ctx, cmds, key)
	s.m.requestDuration.WithLabelValues("bulk").Observe(time.Since(start).Seconds())
	s.m.bulkSize.Observe(float64(len(items)))
	now := time.Now()
	call, results := outcome.ClassifyBulk(ans, txIDs, now)
	s.afterCall(done, call, ans, now)
	if call.KeySpent {
		s.tracker.spend(base, key)
	} else {
		s.tracker.forget(base)
	}
	span.SetAttributes(outcomeKey.String(call.Action.String()), httpCodeKey.Int(call.StatusCode))
	events.EndSpan(span, resultErr(call))
	if call.Action == outcome.DeadLetter && len(items) > 1 {
		// Novu refused the call as a whole (400, 413...): that may be one
		// event's fault. Send each alone, so only those Novu refuses
		// themselves are dead-lettered.
		s.log.Warn("novu refused a bulk call as a whole; sending its events one by one",
			"reason", call.Reason, "events", len(items))
		for _, it := range items {
			s.handleSingle(runCtx, it)
		}
		return
	}
	// One jitter for the call: items retried together come back together,
	// and so go out in bulk again.
	jitter := rand.Float64()
	for i, it := range items {
		s.settle(it, results[i], jitter)
	}
}

// afterCall feeds the breaker and the rate limiter with one call's result.
func (s *Sink) afterCall(done func(outcome.BreakerVerdict), res outcome.Result, ans outcome.Answer, now time.Time) {
	if d, ok := outcome.RateLimitPause(ans.StatusCode, ans.Header, now); ok {
		s.limiter.pause(d)
	}
	if res.Action == outcome.Outage {
		s.breaker.reportOutage(res)
	}
	done(res.Breaker())
}

// settle acts on the verdict for one message: the one place that acks.
// jitter in [0, 1) spreads the backoff of a retry.
func (s *Sink) settle(it *item, res outcome.Result, jitter float64) {
	it.span.SetAttributes(outcomeKey.String(res.Action.String()), httpCodeKey.Int(res.StatusCode))
	if res.Status != "" {
		it.span.SetAttributes(statusKey.String(res.Status))
	}
	switch res.Action {
	case outcome.Deliver:
		s.tracker.forget(it.cmd.TransactionID)
		s.m.triggers.WithLabelValues(outcomeDelivered, res.StatusLabel()).Inc()
		s.observeEndToEnd(it)
		s.ack(it)
		events.EndSpan(it.span, nil)
	case outcome.DeadLetter:
		if res.UnknownStatus {
			s.log.WarnContext(it.ctx, "novu answered a trigger status this sink does not know; dead-lettering so it can be replayed",
				"status", res.Status, "workflow", it.cmd.WorkflowID, "transaction_id", it.cmd.TransactionID, "svix_id", it.cmd.SvixID)
		}
		s.deadLetter(it, res, res.StatusLabel())
	case outcome.Retry:
		if res.BackPressure() {
			// Novu asked to wait (429, Retry-After): not the message's
			// fault, so the delivery is excused like an outage's.
			s.tracker.excuse(it.cmd.TransactionID)
			s.nak(it, min(res.RetryAfter, s.cfg.RetryMax), res)
			return
		}
		// Deliveries spent in an outage or behind the open breaker are not
		// held against the message (as far as this process remembers).
		if counted := it.deliveries - min(s.tracker.excused(it.cmd.TransactionID), it.deliveries-1); counted >= uint64(s.cfg.MaxDeliver) {
			res.Reason += " (gave up after " + strconv.FormatUint(it.deliveries, 10) + " deliveries)"
			s.deadLetter(it, res, res.StatusLabel())
			return
		}
		s.tracker.failed(it.cmd.TransactionID, time.Now())
		delay := res.RetryAfter
		if delay <= 0 {
			delay = events.Backoff(int(it.deliveries), s.cfg.RetryBase, s.cfg.RetryMax, jitter)
		}
		s.nak(it, min(delay, s.cfg.RetryMax), res)
	case outcome.Outage:
		// Not the message's fault: keep it for when the key or plan is fixed.
		s.tracker.failed(it.cmd.TransactionID, time.Now())
		s.tracker.excuse(it.cmd.TransactionID)
		s.nak(it, s.cfg.BreakerOpen, res)
	}
}

// notSent gives a message back without having called Novu (breaker open,
// stopping), to come back after delay.
func (s *Sink) notSent(it *item, delay time.Duration) {
	s.inHand.remove(it.msg)
	if it.cmd.TransactionID != "" {
		s.tracker.excuse(it.cmd.TransactionID)
	}
	if err := it.msg.NakWithDelay(delay); err != nil {
		s.log.DebugContext(it.ctx, "nak failed; the message comes back after the ack wait", "err", err)
	}
	s.m.triggers.WithLabelValues(outcomeRetried, statusNotSent).Inc()
	it.span.SetAttributes(outcomeKey.String("not_sent"))
	events.EndSpan(it.span, nil)
}

func (s *Sink) nak(it *item, delay time.Duration, res outcome.Result) {
	s.inHand.remove(it.msg)
	if err := it.msg.NakWithDelay(delay); err != nil {
		s.log.WarnContext(it.ctx, "nak failed; the message comes back after the ack wait", "err", err)
	}
	s.m.triggers.WithLabelValues(outcomeRetried, res.StatusLabel()).Inc()
	s.log.WarnContext(it.ctx, "novu trigger failed; will retry", "reason", res.Reason, "delay", delay.String(),
		"deliveries", it.deliveries, "workflow", it.cmd.WorkflowID, "transaction_id", it.cmd.TransactionID, "svix_id", it.cmd.SvixID)
	events.EndSpan(it.span, resultErr(res))
}

func (s *Sink) ack(it *item) {
	s.inHand.remove(it.msg)
	ctx, cancel := context.WithTimeout(it.ctx, settleTimeout)
	defer cancel()
	if err := it.msg.DoubleAck(ctx); err != nil {
		// Novu has it; a redelivery is dropped by Novu's transactionId dedupe.
		s.log.WarnContext(it.ctx, "ack failed; the message will be redelivered and deduplicated by Novu",
			"err", err, "transaction_id", it.cmd.TransactionID, "svix_id", it.cmd.SvixID)
	}
}

// deadLetter publishes the message to the DLQ, waits for the PubAck, then
// acks it. If the publish fails the message is kept (NAK with backoff).
func (s *Sink) deadLetter(it *item, res outcome.Result, status string) {
	now := time.Now()
	first := now
	if it.cmd.TransactionID != "" {
		first = s.tracker.failed(it.cmd.TransactionID, now)
	}
	dl := events.DeadLetter{
		Stage:          events.StageSink,
		Suffix:         it.cmd.WorkflowID,
		Reason:         res.Reason,
		Deliveries:     it.deliveries,
		SourceSubject:  it.msg.Subject(),
		SourceSequence: it.sequence,
		HTTPStatus:     res.StatusCode,
		Response:       res.Response,
		FirstFailure:   first,
		LastFailure:    now,
	}
	msg := dl.Msg(it.msg.Data(), it.msg.Headers())
	ctx, cancel := context.WithTimeout(it.ctx, settleTimeout)
	_, err := s.pub.PublishMsg(ctx, msg, jetstream.WithExpectStream(events.StreamDLQ))
	cancel()
	if errors.Is(err, nats.ErrMaxPayload) {
		// Retrying cannot make it fit: terminate the source, which stays
		// readable in its stream for the stream's max age.
		s.log.ErrorContext(it.ctx, "the dead letter exceeds the server's max_payload; terminating the message, which stays in its stream",
			"err", err, "reason", res.Reason, "stream", events.StreamNovu, "sequence", it.sequence,
			"svix_id", it.cmd.SvixID, "transaction_id", it.cmd.TransactionID)
		s.inHand.remove(it.msg)
		if terr := it.msg.TermWithReason("dead letter too large: " + res.Reason); terr != nil {
			s.log.WarnContext(it.ctx, "term failed; the message comes back after the ack wait", "err", terr)
		}
		s.m.triggers.WithLabelValues(outcomeDeadLettered, status).Inc()
		events.EndSpan(it.span, errors.New(res.Reason))
		return
	}
	if err != nil {
		s.log.ErrorContext(it.ctx, "publishing a dead letter failed; keeping the message", "err", err,
			"subject", msg.Subject, "reason", res.Reason, "svix_id", it.cmd.SvixID)
		retry := outcome.Result{Action: outcome.Retry, StatusCode: res.StatusCode, Reason: "dead-letter publish: " + err.Error()}
		s.nak(it, events.Backoff(int(it.deliveries), s.cfg.RetryBase, s.cfg.RetryMax, rand.Float64()), retry)
		return
	}
	if it.cmd.TransactionID != "" {
		s.tracker.forget(it.cmd.TransactionID)
	}
	s.m.triggers.WithLabelValues(outcomeDeadLettered, status).Inc()
	s.log.WarnContext(it.ctx, "trigger dead-lettered", "reason", res.Reason, "subject", msg.Subject,
		"workflow", it.cmd.WorkflowID, "transaction_id", it.cmd.TransactionID, "svix_id", it.cmd.SvixID, "deliveries", it.deliveries)
	s.ack(it)
	events.EndSpan(it.span, errors.New(res.Reason))
}

// dryRun logs the trigger it would send and acks.
func (s *Sink) dryRun(it *item) {
	attrs := []any{"workflow", it.cmd.WorkflowID, "transaction_id", it.cmd.TransactionID, "svix_id", it.cmd.SvixID}
	if sub := it.cmd.To.Subscriber; sub != nil {
		attrs = append(attrs, "subscriber_id", sub.SubscriberID)
	}
	if t := it.cmd.To.Topic; t != nil {
		attrs = append(attrs, "topic_key", t.TopicKey)
	}
	s.log.InfoContext(it.ctx, "dry run: would trigger Novu workflow", attrs...)
	if sub := it.cmd.To.Subscriber; sub != nil {
		// Email, phone and names are personal data: debug level only.
		s.log.DebugContext(it.ctx, "dry run: subscriber", "transaction_id", it.cmd.TransactionID, "subscriber", *sub)
	}
	s.observeEndToEnd(it)
	s.m.triggers.WithLabelValues(outcomeDryRun, statusNone).Inc()
	s.ack(it)
	it.span.SetAttributes(outcomeKey.String(outcomeDryRun))
	events.EndSpan(it.span, nil)
}

// observeEndToEnd records now minus when the receiver accepted the webhook.
func (s *Sink) observeEndToEnd(it *item) {
	ms := it.cmd.ReceivedAt
	if ms <= 0 {
		ms, _ = strconv.ParseInt(it.msg.Headers().Get(events.ReceivedAtHeader), 10, 64)
	}
	if ms <= 0 {
		return
	}
	if d := time.Since(time.UnixMilli(ms)); d >= 0 {
		s.m.endToEnd.Observe(d.Seconds())
	}
}

func resultErr(r outcome.Result) error {
	if r.Action == outcome.Deliver {
		return nil
	}
	return errors.New(r.Reason)
}
