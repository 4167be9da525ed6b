package consume

import (
	"context"
	"errors"
	"time"
)

// Kind says what a [Verdict] asks the runtime to do.
type Kind uint8

// The kinds of [Verdict]. The zero Kind is not a verdict: the runtime treats
// it as a Retry, so a handler that forgets to decide never loses a message.
const (
	// KindAck: the message's effect is stored downstream; ack it.
	KindAck Kind = iota + 1
	// KindRetry: the message failed; redeliver it after a delay.
	KindRetry
	// KindDeadLetter: no retry can help; store it in DLQ, then terminate it.
	KindDeadLetter
	// KindPause: not the message's fault (back-pressure, an outage); hold it,
	// pause consumption, and hand it to the handler again.
	KindPause
)

// String returns ack, retry, dead_letter or pause.
func (k Kind) String() string {
	switch k {
	case KindAck:
		return "ack"
	case KindRetry:
		return "retry"
	case KindDeadLetter:
		return "dead_letter"
	case KindPause:
		return "pause"
	}
	return "none"
}

// Details describe the last failure of a dead-lettered message; they become
// the DLQ headers of [events.DeadLetter].
type Details struct {
	// HTTPStatus and Response are the downstream's last answer, if any.
	HTTPStatus int
	Response   []byte
	// FirstFailure and LastFailure bound the failures, if known.
	FirstFailure, LastFailure time.Time
}

// Verdict is what a handler decides for one message. Build it with [Ack],
// [Retry], [DeadLetter] or [Pause]; the runtime applies it.
type Verdict struct {
	kind    Kind
	after   time.Duration
	until   time.Time
	reason  string
	err     error
	details Details
	label   string
}

// Ack acknowledges the message: its effect is stored downstream. The ack is a
// plain Ack, not a double ack: a lost ack only means a redelivery, which the
// Nats-Msg-Id and transactionId dedupe absorb.
func Ack() Verdict { return Verdict{kind: KindAck} }

// Retry NAKs the message for redelivery after the delay after; after <= 0
// uses the runtime's jittered exponential backoff ([events.Backoff] of the
// delivery count). cause is logged and, if this is the last allowed delivery,
// becomes the reason of the dead letter "gave up after N deliveries: cause".
func Retry(after time.Duration, cause error) Verdict {
	return Verdict{kind: KindRetry, after: after, err: cause}
}

// DeadLetter gives the message up: the runtime publishes it to stream DLQ
// with reason (one line) and, once the DLQ acked it, terminates the source
// with TermWithReason. Add the last answer with [Verdict.WithDetails].
func DeadLetter(reason string) Verdict { return Verdict{kind: KindDeadLetter, reason: reason} }

// Pause says the failure is not the message's fault (a 429, Retry-After, an
// open breaker, a 401/402/403): the runtime keeps the message in hand with
// InProgress (no NAK, so its delivery count does not grow), pulls and hands
// out nothing more until until, then calls the handler again for the same
// delivery. A zero or past until pauses for Config.BackoffMin. cause is logged.
// At shutdown a held message is NAKed for redelivery elsewhere.
func Pause(until time.Time, cause error) Verdict {
	return Verdict{kind: KindPause, until: until, err: cause}
}

// FromError is the Watermill mapping: nil acks, an error [IsPermanent] says
// no retry can fix is dead-lettered with its text, any other is retried with
// the runtime's backoff.
func FromError(err error) Verdict {
	switch {
	case err == nil:
		return Ack()
	case IsPermanent(err):
		return DeadLetter(err.Error())
	}
	return Retry(0, err)
}

// WithDetails returns v carrying d, for the dead letter it may become.
func (v Verdict) WithDetails(d Details) Verdict { v.details = d; return v }

// WithLabel returns v with a label the handler chose (the router marks an
// acked event it did not route "skipped"); the runtime only passes it to the
// [Observer].
func (v Verdict) WithLabel(label string) Verdict { v.label = label; return v }

// Kind is what v asks for.
func (v Verdict) Kind() Kind { return v.kind }

// After is a Retry's delay (0: the runtime's backoff).
func (v Verdict) After() time.Duration { return v.after }

// Until is when a Pause ends.
func (v Verdict) Until() time.Time { return v.until }

// Err is the cause of a Retry or a Pause.
func (v Verdict) Err() error { return v.err }

// Details are the failure details for a dead letter.
func (v Verdict) Details() Details { return v.details }

// Label is the handler's label, if any.
func (v Verdict) Label() string { return v.label }

// Reason is a one-line account of v: a dead letter's reason, or the text of
// a Retry's or Pause's cause.
func (v Verdict) Reason() string {
	switch {
	case v.reason != "":
		return v.reason
	case v.err != nil:
		return v.err.Error()
	case v.kind == 0:
		return errNoVerdict.Error()
	}
	return ""
}

var errNoVerdict = errors.New("handler returned no verdict")

// HandlerFunc handles one message and returns what to do with it, in the
// shape of Watermill's HandlerFunc. It must not ack, NAK or terminate the
// message itself. ctx carries the message's process span and is canceled
// only when the shutdown deadline has passed.
type HandlerFunc func(ctx context.Context, m *Message) Verdict

// BatchHandlerFunc handles several messages in one call (the sink's bulk
// calls) and returns one verdict per message, in order; a missing verdict is
// a Retry. ctx is canceled only when the shutdown deadline has passed; each
// message's own context, with its process span, is [Message.Context].
type BatchHandlerFunc func(ctx context.Context, ms []*Message) []Verdict
