package consume

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	rt "github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/outcome"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Span attributes of the sink, next to [events.WorkflowIDKey] and friends.
const (
	outcomeKey  = attribute.Key("novu.outcome")
	statusKey   = attribute.Key("novu.status")
	httpCodeKey = attribute.Key("http.response.status_code")
	bulkSizeKey = attribute.Key("novu.bulk.size")
)

var (
	// errBreakerOpen is the cause of a Pause while the breaker is open.
	errBreakerOpen = errors.New("novu breaker open")
	// errProbeBusy is the cause of a Pause while the half-open probe is out.
	errProbeBusy = errors.New("novu breaker half-open: waiting for the probe")
	// errStopping is the cause of a Pause when the sink stops before the call.
	errStopping = errors.New("novu sink stopping")
)

// item is one decoded command on its way to Novu.
type item struct {
	m   *rt.Message
	cmd events.TriggerCommand
	ctx context.Context // the message's context, with its process span
}

// decode reads m's command; a command that does not decode gets its
// dead-letter verdict instead.
func decode(m *rt.Message) (*item, rt.Verdict) {
	cmd, err := events.ParseCommand(m.Data)
	if err != nil {
		return nil, rt.DeadLetter(err.Error()).WithLabel(statusInvalid)
	}
	it := &item{m: m, cmd: cmd, ctx: m.Context()}
	// The body is the authority when the headers are missing (a command
	// republished by hand).
	trace.SpanFromContext(it.ctx).SetAttributes(events.WorkflowIDKey.String(cmd.WorkflowID),
		events.TransactionIDKey.String(cmd.TransactionID),
		events.SvixIDKey.String(cmd.SvixID))
	return it, rt.Verdict{}
}

// spanAttributes name a command on its process span and its dead letter's
// publish span (the runtime's WithAttributes), from the headers the router
// sets, so an undecodable command is named too.
func spanAttributes(m *rt.Message) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 3)
	for _, a := range [...]struct {
		key    attribute.Key
		header string
	}{
		{events.WorkflowIDKey, events.WorkflowIDHeader},
		{events.TransactionIDKey, events.TransactionIDHeader},
		{events.SvixIDKey, events.SvixIDHeader},
	} {
		if v := m.Header.Get(a.header); v != "" {
			attrs = append(attrs, a.key.String(v))
		}
	}
	return attrs
}

// handle is the runtime's handler of one message.
func (s *Sink) handle(_ context.Context, m *rt.Message) rt.Verdict {
	it, v := decode(m)
	switch {
	case it == nil:
		return v
	case s.cfg.DryRun:
		return s.dryRun(it)
	}
	return s.send(it)
}

// handleBulk is the runtime's batch handler: one bulk call for the batch,
// each message judged by its own item of Novu's answer.
func (s *Sink) handleBulk(ctx context.Context, ms []*rt.Message) []rt.Verdict {
	vs := make([]rt.Verdict, len(ms))
	items := make([]*item, 0, len(ms))
	at := make([]int, 0, len(ms))
	for i, m := range ms {
		it, v := decode(m)
		if it == nil {
			vs[i] = v
			continue
		}
		items, at = append(items, it), append(at, i)
	}
	if len(items) == 0 {
		return vs
	}
	s.bulkBusy.Add(1)
	defer s.bulkBusy.Add(-1)
	for j, v := range s.sendBulk(ctx, items) {
		vs[at[j]] = v
	}
	return vs
}

// send makes one trigger call and judges its answer.
func (s *Sink) send(it *item) rt.Verdict {
	if err := s.limiter.wait(s.stopping, singleCost); err != nil {
		return rt.Pause(time.Time{}, errStopping).WithLabel(statusNotSent)
	}
	// Held back as the probe, it uses a delivery: never its last one.
	done, err := s.breaker.allow(it.cmd.TransactionID, it.m.NumDelivered+1 < uint64(s.cfg.MaxDeliver))
	if err != nil {
		return s.refused(err)
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
	return s.verdict(it, res, rand.Float64(), now)
}

// sendBulk makes one bulk call for items and judges each by its own result.
// A call Novu refuses as a whole (400, 413, 422...) may be one event's
// fault: its events are then sent one by one, so only those Novu refuses
// alone are dead-lettered.
func (s *Sink) sendBulk(ctx context.Context, items []*item) []rt.Verdict {
	all := func(v rt.Verdict) []rt.Verdict {
		vs := make([]rt.Verdict, len(items))
		for i := range vs {
			vs[i] = v
		}
		return vs
	}
	if err := s.limiter.wait(s.stopping, bulkCost); err != nil {
		return all(rt.Pause(time.Time{}, errStopping).WithLabel(statusNotSent))
	}
	cmds := make([]*events.TriggerCommand, len(items))
	txIDs := make([]string, len(items))
	links := make([]trace.Link, len(items))
	for i, it := range items {
		cmds[i], txIDs[i] = &it.cmd, it.cmd.TransactionID
		links[i] = trace.Link{SpanContext: trace.SpanContextFromContext(it.ctx)}
	}
	base := novu.BulkKey(txIDs)
	done, err := s.breaker.allow(base, false)
	if err != nil {
		return all(s.refused(err))
	}
	// The bulk call has its own trace, linked to every message's.
	ctx, span := s.tracer.Start(ctx, "novu bulk trigger",
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
		s.log.Warn("novu refused a bulk call as a whole; sending its events one by one",
			"reason", call.Reason, "events", len(items))
		vs := make([]rt.Verdict, len(items))
		for i, it := range items {
			vs[i] = s.send(it)
		}
		return vs
	}
	// One jitter for the call: items retried together come back together,
	// and so go out in bulk again.
	jitter := rand.Float64()
	vs := make([]rt.Verdict, len(items))
	for i, it := range items {
		vs[i] = s.verdict(it, results[i], jitter, now)
	}
	return vs
}

// refused is the verdict for a call the breaker did not let through: wait
// (a Pause uses no delivery) while it is open or its probe is out; the
// message that opened it backs off on its own instead of being the probe.
func (s *Sink) refused(err error) rt.Verdict {
	now := time.Now()
	switch {
	case errors.Is(err, errSkipProbe):
		return rt.Retry(0, err).WithLabel(statusNotSent)
	case errors.Is(err, gobreaker.ErrOpenState):
		return rt.Pause(now.Add(max(s.breaker.openRemaining(), time.Millisecond)), errBreakerOpen).WithLabel(statusNotSent)
	}
	return rt.Pause(now.Add(min(s.cfg.RetryBase, s.cfg.BreakerOpen)), errProbeBusy).WithLabel(statusNotSent)
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

// verdict turns the classification of Novu's answer into the runtime's
// verdict. jitter in [0, 1) spreads the backoff of a retry.
//
//   - delivered: Ack;
//   - refused for good: DeadLetter, with Novu's status and answer;
//   - an outage (401/402/403, redirect) or back-pressure (429, Retry-After):
//     Pause, which holds the message without using a delivery;
//   - any other failure: Retry after Retry-After or the backoff; on the last
//     delivery the runtime dead-letters it instead.
func (s *Sink) verdict(it *item, res outcome.Result, jitter float64, now time.Time) rt.Verdict {
	span := trace.SpanFromContext(it.ctx)
	span.SetAttributes(outcomeKey.String(res.Action.String()), httpCodeKey.Int(res.StatusCode))
	if res.Status != "" {
		span.SetAttributes(statusKey.String(res.Status))
	}
	tx := it.cmd.TransactionID
	switch res.Action {
	case outcome.Deliver:
		s.observeEndToEnd(it)
	case outcome.DeadLetter:
		if res.UnknownStatus {
			s.log.WarnContext(it.ctx, "novu answered a trigger status this sink does not know; dead-lettering so it can be replayed",
				"status", res.Status, "workflow", it.cmd.WorkflowID, "transaction_id", tx, "svix_id", it.cmd.SvixID)
		}
	}
	return s.verdictOf(tx, it.m.NumDelivered, res, jitter, now)
}

// verdictOf is the verdict of res for the message key (its transactionId,
// or a sync command's id) on delivery delivered, shared by triggers and
// sync commands.
func (s *Sink) verdictOf(key string, delivered uint64, res outcome.Result, jitter float64, now time.Time) rt.Verdict {
	label := res.StatusLabel()
	switch res.Action {
	case outcome.Deliver:
		s.tracker.forget(key)
		return rt.Ack().WithLabel(label)
	case outcome.DeadLetter:
		d := s.details(key, res, now)
		s.tracker.forget(key)
		return rt.DeadLetter(res.Reason).WithDetails(d).WithLabel(label)
	case outcome.Outage:
		// Not the message's fault: keep it for when the key or plan is fixed.
		return rt.Pause(now.Add(s.cfg.BreakerOpen), errors.New(res.Reason)).WithLabel(label)
	}
	if res.BackPressure() {
		until := now.Add(max(min(res.RetryAfter, s.cfg.RetryMax), s.limiter.paused()))
		return rt.Pause(until, errors.New(res.Reason)).WithLabel(label)
	}
	delay := min(res.RetryAfter, s.cfg.RetryMax)
	if delay <= 0 {
		delay = events.Backoff(int(delivered), s.cfg.RetryBase, s.cfg.RetryMax, jitter)
	}
	d := s.details(key, res, now)
	if delivered >= uint64(s.cfg.MaxDeliver) {
		// The runtime dead-letters a Retry on the last delivery: the message
		// is settled for good, so its key is forgotten as for a DeadLetter.
		// (The Observer sees the settlement but not the key, which is the
		// decoded body's.)
		s.tracker.forget(key)
	}
	return rt.Retry(delay, errors.New(res.Reason)).WithDetails(d).WithLabel(label)
}

// details are the dead-letter headers of a failure at now.
func (s *Sink) details(tx string, res outcome.Result, now time.Time) rt.Details {
	return rt.Details{HTTPStatus: res.StatusCode, Response: res.Response, FirstFailure: s.tracker.failed(tx, now), LastFailure: now}
}

// dryRun logs the trigger it would send and acks. Email, phone and names
// are personal data: they are logged at debug level only.
func (s *Sink) dryRun(it *item) rt.Verdict {
	attrs := []any{"workflow", it.cmd.WorkflowID, "transaction_id", it.cmd.TransactionID, "svix_id", it.cmd.SvixID}
	if sub := it.cmd.To.Subscriber; sub != nil {
		attrs = append(attrs, "subscriber_id", sub.SubscriberID)
	}
	if t := it.cmd.To.Topic; t != nil {
		attrs = append(attrs, "topic_key", t.TopicKey)
	}
	s.log.InfoContext(it.ctx, "dry run: would trigger Novu workflow", attrs...)
	if sub := it.cmd.To.Subscriber; sub != nil {
		s.log.DebugContext(it.ctx, "dry run: subscriber", "transaction_id", it.cmd.TransactionID, "subscriber", *sub)
	}
	s.observeEndToEnd(it)
	trace.SpanFromContext(it.ctx).SetAttributes(outcomeKey.String(outcomeDryRun))
	return rt.Ack().WithLabel(statusNone)
}

// observe is the runtime's observer: it counts every settlement.
func (s *Sink) observe(_ context.Context, _ *rt.Message, v rt.Verdict, st rt.Settlement) {
	s.m.triggers.WithLabelValues(s.labels(v, st)).Inc()
}

// labels are the outcome and status labels of a settlement: the runtime's
// names (retried, dead_lettered, paused, returned), but an ack is a
// delivery (or a dry run), and the status is the verdict's label.
func (s *Sink) labels(v rt.Verdict, st rt.Settlement) (out, status string) {
	status = v.Label()
	if status == "" {
		status = statusNotSent
	}
	out = st.Outcome.String()
	if st.Outcome == rt.Acked {
		out = outcomeDelivered
		if s.cfg.DryRun {
			out = outcomeDryRun
		}
	}
	return out, status
}

// observeEndToEnd records now minus when the receiver accepted the webhook.
func (s *Sink) observeEndToEnd(it *item) {
	ms := it.cmd.ReceivedAt
	if ms <= 0 {
		ms, _ = strconv.ParseInt(it.m.Header.Get(events.ReceivedAtHeader), 10, 64)
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
