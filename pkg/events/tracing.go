package events

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans this package helps start.
const ScopeName = "github.com/clerknovu/pipeline/pkg/events"

// Span attribute keys of this pipeline, next to the OTel messaging conventions.
const (
	// SvixIDKey is the svix-id of the source webhook.
	SvixIDKey = attribute.Key("clerk.svix_id")
	// EventTypeKey is the Clerk event type.
	EventTypeKey = attribute.Key("clerk.event_type")
	// WorkflowIDKey is the Novu workflow id.
	WorkflowIDKey = attribute.Key("novu.workflow_id")
	// TransactionIDKey is the Novu transactionId.
	TransactionIDKey = attribute.Key("novu.transaction_id")
)

// messagingSystemNATS is messaging.system=nats (not an enum member of semconv).
var messagingSystemNATS = semconv.MessagingSystemKey.String("nats")

// StartPublish starts a producer span for publishing msg, then injects its
// context into msg's headers with prop (nil: otel.GetTextMapPropagator()), in
// that order, as otelhttp's transport does. The caller ends the span once the
// PubAck (or error) is known.
func StartPublish(ctx context.Context, tracer trace.Tracer, prop propagation.TextMapPropagator, msg *nats.Msg, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := tracer.Start(ctx, "send "+msg.Subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(messagingSystemNATS,
			semconv.MessagingDestinationName(msg.Subject),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("publish")),
		trace.WithAttributes(attrs...),
	)
	Inject(ctx, msg, WithPropagator(prop))
	return ctx, span
}

// StartProcess extracts the trace context from a consumed message's headers
// with prop (nil: otel.GetTextMapPropagator()) and starts a consumer span under
// it. The caller ends the span.
func StartProcess(ctx context.Context, tracer trace.Tracer, prop propagation.TextMapPropagator, subject string, h nats.Header, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx = Extract(ctx, h, WithPropagator(prop))
	return tracer.Start(ctx, "process "+subject,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(messagingSystemNATS,
			semconv.MessagingDestinationName(subject),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName("process")),
		trace.WithAttributes(attrs...),
	)
}

// EndSpan records err on span, if any, and ends it.
func EndSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
