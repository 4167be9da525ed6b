package events_test

import (
	"context"
	"fmt"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// A publisher injects its span's context into the message headers under the
// lower-case W3C key; the consumer extracts it and continues the trace.
func ExampleInject() {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10},
		SpanID:     trace.SpanID{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	prop := events.WithPropagator(propagation.TraceContext{})

	msg := &nats.Msg{Subject: "clerk.user.created"} // Header is nil: Inject allocates it
	events.Inject(ctx, msg, prop)
	fmt.Println(msg.Header["traceparent"][0])

	got := trace.SpanContextFromContext(events.Extract(context.Background(), msg.Header, prop))
	fmt.Println(got.TraceID(), got.IsRemote())
	// Output:
	// 00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01
	// 0102030405060708090a0b0c0d0e0f10 true
}
