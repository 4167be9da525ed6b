package stack_test

import (
	"strings"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// spanWant is one span an event's trace must hold: its kind and, for
// messaging spans, the prefix of its destination.
type spanWant struct {
	kind        trace.SpanKind
	destination string
}

func (w spanWant) String() string {
	if w.destination == "" {
		return w.kind.String()
	}
	return w.kind.String() + " " + w.destination + "*"
}

var (
	// skippedSpans: the receiver's HTTP server span and publish, the router's processing.
	skippedSpans = []spanWant{
		{trace.SpanKindServer, ""},
		{trace.SpanKindProducer, events.ClerkSubjectPrefix},
		{trace.SpanKindConsumer, events.ClerkSubjectPrefix},
	}
	// routerDeadLetterSpans: as skipped, plus the publish to the DLQ.
	routerDeadLetterSpans = append(append([]spanWant(nil), skippedSpans...),
		spanWant{trace.SpanKindProducer, events.DLQSubjectPrefix})
	// triggeredSpans: the whole way to Novu.
	triggeredSpans = append(append([]spanWant(nil), skippedSpans...),
		spanWant{trace.SpanKindProducer, events.NovuTriggerSubjectPrefix},
		spanWant{trace.SpanKindConsumer, events.NovuTriggerSubjectPrefix},
		spanWant{trace.SpanKindClient, ""},
	)
)

// attr returns the string value of key on s.
func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// traceIDs returns the traces holding a span with svix-id svixID.
func traceIDs(spans []sdktrace.ReadOnlySpan, svixID string) map[trace.TraceID]bool {
	out := map[trace.TraceID]bool{}
	for _, s := range spans {
		if attr(s, string(events.SvixIDKey)) == svixID {
			out[s.SpanContext().TraceID()] = true
		}
	}
	return out
}

// traceOf returns the trace in which the router processed svixID's event.
func traceOf(spans []sdktrace.ReadOnlySpan, svixID string) (trace.TraceID, bool) {
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindConsumer && attr(s, string(events.SvixIDKey)) == svixID &&
			strings.HasPrefix(attr(s, string(semconv.MessagingDestinationNameKey)), events.ClerkSubjectPrefix) {
			return s.SpanContext().TraceID(), true
		}
	}
	return trace.TraceID{}, false
}

// missing checks that trace tid holds the wanted spans as one causal chain,
// each the child of the one before (the first, the receiver's server span, a
// root), and that every messaging span carries the OTel messaging attributes
// and the event's svix-id. It returns what is wrong, "" when nothing.
func missing(spans []sdktrace.ReadOnlySpan, tid trace.TraceID, svixID string, want []spanWant) string {
	var prev sdktrace.ReadOnlySpan
	for i, w := range want {
		var found sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.SpanContext().TraceID() != tid || s.SpanKind() != w.kind ||
				!strings.HasPrefix(attr(s, string(semconv.MessagingDestinationNameKey)), w.destination) {
				continue
			}
			if (i == 0 && !s.Parent().IsValid()) || (i > 0 && s.Parent().SpanID() == prev.SpanContext().SpanID()) {
				found = s
				break
			}
		}
		if found == nil {
			if i == 0 {
				return w.String() + " as the root"
			}
			return w.String() + " as the child of " + prev.SpanKind().String() + " " + prev.Name()
		}
		if w.destination != "" {
			for _, key := range []string{string(semconv.MessagingSystemKey), string(semconv.MessagingOperationTypeKey), string(events.SvixIDKey)} {
				if attr(found, key) == "" {
					return key + " on " + w.String()
				}
			}
			if got := attr(found, string(events.SvixIDKey)); got != svixID {
				return "svix-id " + svixID + " on " + w.String() + " (got " + got + ")"
			}
			if attr(found, string(semconv.MessagingSystemKey)) != "nats" {
				return "messaging.system=nats on " + w.String()
			}
			if w.destination == events.NovuTriggerSubjectPrefix && attr(found, string(events.WorkflowIDKey)) == "" {
				return string(events.WorkflowIDKey) + " on " + w.String()
			}
		}
		prev = found
	}
	return ""
}

// traceparentTraceID returns the trace id of a W3C traceparent header.
func traceparentTraceID(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}

// checkPublicEndpoint checks that the receiver started a new trace for a
// request that carried its own traceparent, and linked to it.
func checkPublicEndpoint(t *testing.T, spans []sdktrace.ReadOnlySpan, tid trace.TraceID, foreign trace.SpanContext) {
	t.Helper()
	if tid == foreign.TraceID() {
		t.Errorf("the webhook's traceparent became the parent; want a new trace linked to it")
		return
	}
	for _, s := range spans {
		if s.SpanContext().TraceID() != tid || s.SpanKind() != trace.SpanKindServer {
			continue
		}
		for _, l := range s.Links() {
			if l.SpanContext.TraceID() == foreign.TraceID() && l.SpanContext.SpanID() == foreign.SpanID() {
				return
			}
		}
		t.Errorf("server span %q has no link to the webhook's traceparent", s.Name())
		return
	}
	t.Errorf("no server span in trace %s", tid)
}

// describe lists a trace's spans, for failure messages.
func describe(spans []sdktrace.ReadOnlySpan, tid trace.TraceID) string {
	var out []string
	for _, s := range spans {
		if s.SpanContext().TraceID() == tid {
			out = append(out, s.SpanKind().String()+" "+s.Name())
		}
	}
	return strings.Join(out, "; ")
}
