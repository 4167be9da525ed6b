package events

import (
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
)

// Header keys this pipeline sets on JetStream messages. The message id uses
// jetstream.MsgIDHeader (Nats-Msg-Id); the W3C trace context uses the lower-case
// traceparent and tracestate keys through [HeaderCarrier].
const (
	// SvixIDHeader carries the svix-id of the webhook the message comes from.
	SvixIDHeader = "Svix-Id"
	// SvixTimestampHeader carries the svix-timestamp (Unix seconds) of the delivery that was stored.
	SvixTimestampHeader = "Svix-Timestamp"
	// EventTypeHeader carries the Clerk event type, e.g. user.created.
	EventTypeHeader = "Event-Type"
	// ReceivedAtHeader carries when the receiver accepted the webhook, in Unix
	// milliseconds; the sink measures end-to-end latency from it.
	ReceivedAtHeader = "Received-At"
	// WorkflowIDHeader carries the Novu workflow id of a trigger command.
	WorkflowIDHeader = "Workflow-Id"
	// TransactionIDHeader carries the Novu transactionId of a trigger command.
	TransactionIDHeader = "Transaction-Id"
)

// Dead-letter header keys, set on every message in stream DLQ.
const (
	// DLQReasonHeader is a one-line reason, e.g. "novu 422: workflow_not_found".
	DLQReasonHeader = "Dlq-Reason"
	// DLQStageHeader is the stage that gave up: router or sink.
	DLQStageHeader = "Dlq-Stage"
	// DLQDeliveriesHeader is how many times the source message was delivered.
	DLQDeliveriesHeader = "Dlq-Deliveries"
	// DLQSourceSubjectHeader is the subject the source message was read from.
	DLQSourceSubjectHeader = "Dlq-Source-Subject"
	// DLQSourceSequenceHeader is the source message's stream sequence.
	DLQSourceSequenceHeader = "Dlq-Source-Sequence"
	// DLQSourceStreamHeader is the stream the source message was read from
	// (CLERK or NOVU); with [DLQSourceSequenceHeader] it points at the source,
	// which stays readable there for the stream's max age.
	DLQSourceStreamHeader = "Dlq-Source-Stream"
	// DLQTruncatedHeader is set on a dead letter whose body was cut so the
	// dead letter fits the server's max_payload; its value is the source
	// body's full size in bytes. The whole body is read from the source
	// pointer.
	DLQTruncatedHeader = "Dlq-Truncated"
	// DLQHTTPStatusHeader is the last HTTP status Novu answered (sink only).
	DLQHTTPStatusHeader = "Dlq-Http-Status"
	// DLQResponseHeader holds the first bytes of Novu's last answer (sink only).
	DLQResponseHeader = "Dlq-Response"
	// DLQFirstFailureHeader is when the first failure happened (RFC 3339, UTC).
	DLQFirstFailureHeader = "Dlq-First-Failure"
	// DLQLastFailureHeader is when the last failure happened (RFC 3339, UTC).
	DLQLastFailureHeader = "Dlq-Last-Failure"
)

// Header name prefixes: of the dead-letter headers above, and of the
// JetStream control headers (Nats-Msg-Id, Nats-Expected-Stream, a rollup or
// a TTL), which were meant for the stream a message was stored in.
const (
	// DLQHeaderPrefix begins every dead-letter header key.
	DLQHeaderPrefix = "Dlq-"
	// ControlHeaderPrefix begins the JetStream control header keys.
	ControlHeaderPrefix = "Nats-"
)

// CopyHeaders returns a deep copy of h for a message stored again in
// another stream (a dead letter, a redrive, a replay): without the
// JetStream control headers, which would make that stream refuse or mangle
// it, nor the headers whose key begins with one of drop.
func CopyHeaders(h nats.Header, drop ...string) nats.Header {
	out := make(nats.Header, len(h))
	for k, v := range h {
		dropped := func(prefix string) bool { return strings.HasPrefix(k, prefix) }
		if !dropped(ControlHeaderPrefix) && !slices.ContainsFunc(drop, dropped) {
			out[k] = append([]string(nil), v...)
		}
	}
	return out
}

// Header keys the operator CLI (clerknovu) sets when it republishes a message.
const (
	// RedriveOfHeader is set on a dead letter republished by `clerknovu dlq
	// redrive`: the dead letter it came from, as DLQ/<sequence>.
	RedriveOfHeader = "Redrive-Of"
	// RedriveCountHeader counts how many times the message was redriven from
	// the DLQ (1 on the first redrive; kept by a later dead letter, so a
	// second redrive writes 2).
	RedriveCountHeader = "Redrive-Count"
	// ReplayOfHeader is set on a Clerk event republished by `clerknovu
	// replay`: the stored event it copies, as CLERK/<sequence>.
	ReplayOfHeader = "Replay-Of"
)
