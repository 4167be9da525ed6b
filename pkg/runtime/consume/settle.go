package consume

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// maxTermReason bounds the reason sent with TermWithReason (it travels in
// the server's MSG_TERMINATED advisory; the full reason is in the DLQ).
const maxTermReason = 256

// work runs one unit of work (a message, or a batch) on a worker and hands
// the held messages back to the loop.
func (r *Runtime) work(ms []*Message) {
	var res result
	defer func() { r.results <- res }()
	spans := make([]trace.Span, len(ms))
	for i, m := range ms {
		m.Calls++
		m.ctx, spans[i] = events.StartProcess(r.workCtx, r.tracer, r.prop, m.Subject, m.Header, r.spanAttrs(m)...)
	}
	var verdicts []Verdict
	if len(ms) == 1 && (r.batch == nil || r.batch.min > 1) {
		verdicts = []Verdict{r.call(ms[0])}
	} else {
		verdicts = r.callBatch(ms)
	}
	for i, m := range ms {
		v := verdicts[i]
		if v.kind == KindPause {
			until := v.until
			if !until.After(time.Now()) {
				until = time.Now().Add(r.cfg.BackoffMin)
			}
			res.held = append(res.held, m)
			if until.After(res.until) {
				res.until = until
			}
			s := Settlement{Outcome: Paused, Reason: v.Reason()}
			r.log.DebugContext(m.ctx, "paused: holding the message", "subject", m.Subject, "reason", s.Reason, "until", until)
			r.notify(m, v, s)
			events.EndSpan(spans[i], nil)
			continue
		}
		s := r.settle(m, v)
		r.hand.remove(m)
		r.notify(m, v, s)
		var spanErr error
		if s.Outcome != Acked {
			spanErr = errors.New(s.Reason)
		}
		events.EndSpan(spans[i], errors.Join(spanErr, s.Err))
	}
}

// spanAttrs are [WithAttributes]'s attributes for m.
func (r *Runtime) spanAttrs(m *Message) []attribute.KeyValue {
	if r.attrs == nil {
		return nil
	}
	return r.attrs(m)
}

func (r *Runtime) notify(m *Message, v Verdict, s Settlement) {
	if r.observe != nil {
		r.observe(m.ctx, m, v, s)
	}
}

// call runs the handler, turning a panic into a Retry.
func (r *Runtime) call(m *Message) (v Verdict) {
	defer func() {
		if p := recover(); p != nil {
			v = Retry(0, fmt.Errorf("handler panic: %v", p))
		}
	}()
	return r.handle(m.ctx, m)
}

// callBatch runs the batch handler, turning a panic or a missing verdict
// into a Retry.
func (r *Runtime) callBatch(ms []*Message) (vs []Verdict) {
	defer func() {
		if p := recover(); p != nil {
			vs = nil
			for range ms {
				vs = append(vs, Retry(0, fmt.Errorf("batch handler panic: %v", p)))
			}
		}
	}()
	vs = r.batch.handle(r.workCtx, ms)
	for len(vs) < len(ms) {
		vs = append(vs, Retry(0, errors.New("batch handler returned no verdict for this message")))
	}
	return vs[:len(ms)]
}

// settle is the one place a message is settled: it applies v and reports
// what was done.
func (r *Runtime) settle(m *Message, v Verdict) Settlement {
	switch v.kind {
	case KindAck:
		var err error
		if r.cfg.ConfirmAcks {
			err = r.confirmAck(m)
		} else {
			err = m.msg.Ack()
		}
		if err != nil {
			r.log.WarnContext(m.ctx, "ack failed: the message comes back after the ack wait and is deduplicated downstream",
				"subject", m.Subject, "err", err.Error())
		}
		return Settlement{Outcome: Acked, Err: err}
	case KindDeadLetter:
		return r.deadLetter(m, v.Reason(), v.details)
	}
	reason := v.Reason()
	if m.NumDelivered >= uint64(r.cfg.MaxDeliver) {
		return r.deadLetter(m, fmt.Sprintf("gave up after %d deliveries: %s", m.NumDelivered, reason), v.details)
	}
	delay := v.after
	if delay <= 0 {
		delay = r.backoff(m)
	}
	r.log.WarnContext(m.ctx, "not done yet: retrying", "subject", m.Subject, "delivery", m.NumDelivered,
		"err", reason, "retry_in", delay)
	return r.nak(m, Settlement{Outcome: Retried, Reason: reason, Delay: delay})
}

// confirmAck acks m and waits for the server to confirm, trying again while
// the ack is not confirmed (a consumer leader change loses acks in flight),
// for at most the ack wait: the keep-alive still runs meanwhile, so the
// server does not redeliver a message whose effect is done.
func (r *Runtime) confirmAck(m *Message) error {
	deadline := time.Now().Add(r.cfg.AckWait)
	wait := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), min(time.Until(deadline), 2*time.Second))
		err := m.msg.DoubleAck(ctx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return nil
		}
		if time.Now().Add(wait).After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

func (r *Runtime) backoff(m *Message) time.Duration {
	return events.Backoff(int(m.NumDelivered), r.cfg.BackoffMin, r.cfg.BackoffMax, rand.Float64())
}

// nak NAKs m with s.Delay.
func (r *Runtime) nak(m *Message, s Settlement) Settlement {
	if err := m.msg.NakWithDelay(s.Delay); err != nil {
		r.log.WarnContext(m.ctx, "nak failed: the message comes back after the ack wait", "subject", m.Subject, "err", err.Error())
		s.Err = errors.Join(s.Err, err)
	}
	return s
}

// deadLetter stores m in DLQ with reason and, once the DLQ acked it (a
// duplicate counts: it was stored before), terminates m with the reason. If
// the DLQ does not store it, m is NAKed with backoff and tried again.
func (r *Runtime) deadLetter(m *Message, reason string, d Details) Settlement {
	dl := events.DeadLetter{
		Stage:          r.cfg.Stage,
		Suffix:         r.cfg.Suffix(m.Subject),
		Reason:         reason,
		Deliveries:     m.NumDelivered,
		SourceStream:   m.Stream,
		SourceSubject:  m.Subject,
		SourceSequence: m.Sequence,
		HTTPStatus:     d.HTTPStatus,
		Response:       d.Response,
		FirstFailure:   d.FirstFailure,
		LastFailure:    d.LastFailure,
	}
	limit := r.maxPayload()
	err := r.publishDeadLetter(m, dl, limit)
	if errors.Is(err, nats.ErrMaxPayload) && limit > 0 {
		// The server we reached takes less than we read: try once with half.
		err = r.publishDeadLetter(m, dl, limit/2)
	}
	if err != nil {
		s := Settlement{Outcome: Retried, Reason: reason, Delay: r.backoff(m), Err: fmt.Errorf("dead letter not stored: %w", err)}
		r.log.ErrorContext(m.ctx, "dead letter not stored: retrying", "subject", m.Subject, "reason", reason,
			"err", err.Error(), "retry_in", s.Delay)
		return r.nak(m, s)
	}
	r.log.WarnContext(m.ctx, "dead-lettered", "subject", m.Subject, "delivery", m.NumDelivered, "reason", reason)
	s := Settlement{Outcome: DeadLettered, Reason: reason}
	if err := m.msg.TermWithReason(events.TruncateUTF8(reason, maxTermReason)); err != nil {
		r.log.WarnContext(m.ctx, "term failed: the message comes back and its dead letter is deduplicated",
			"subject", m.Subject, "err", err.Error())
		s.Err = err
	}
	return s
}

func (r *Runtime) publishDeadLetter(m *Message, dl events.DeadLetter, limit int64) (err error) {
	msg := dl.Msg(m.Data, m.Header, events.WithMaxPayload(limit))
	ctx, span := events.StartPublish(m.ctx, r.tracer, r.prop, msg, r.spanAttrs(m)...)
	defer func() { events.EndSpan(span, err) }()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	_, err = r.pub.PublishMsg(ctx, msg, jetstream.WithExpectStream(events.StreamDLQ))
	if err != nil {
		return fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	return nil
}

// maxPayload is the dead-letter publisher's connection's max_payload (0
// when unknown).
func (r *Runtime) maxPayload() int64 {
	if c, ok := r.pub.(conner); ok {
		if nc := c.Conn(); nc != nil {
			return nc.MaxPayload()
		}
	}
	return 0
}
