package events

import (
	"context"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var (
	traceID = trace.TraceID{0, 0, 0, 0, 0, 0, 0, 0x7b, 0, 0, 0, 0, 0, 0, 0x1, 0xc8}
	spanID  = trace.SpanID{0, 0, 0, 0, 0, 0, 0, 0x7b}
	prop    = propagation.TraceContext{}
)

const (
	parentSampled    = "00-000000000000007b00000000000001c8-000000000000007b-01"
	parentNotSampled = "00-000000000000007b00000000000001c8-000000000000007b-00"
	stateStr         = "key1=value1,key2=value2"
)

func TestExtract(t *testing.T) {
	state, err := trace.ParseTraceState(stateStr)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header nats.Header
		want   trace.SpanContext
	}{
		{
			name:   "sampled",
			header: nats.Header{"traceparent": {parentSampled}},
			want:   trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, Remote: true}),
		},
		{
			name:   "not sampled",
			header: nats.Header{"traceparent": {parentNotSampled}},
			want:   trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, Remote: true}),
		},
		{
			name:   "with tracestate",
			header: nats.Header{"traceparent": {parentNotSampled}, "tracestate": {stateStr}},
			want:   trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceState: state, Remote: true}),
		},
		{
			name:   "among other headers",
			header: nats.Header{"Nats-Msg-Id": {"msg_1"}, SvixIDHeader: {"msg_1"}, "traceparent": {parentSampled}},
			want:   trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, Remote: true}),
		},
		{
			// NATS headers are case-sensitive: a canonicalised key is not the W3C one.
			name:   "canonical-case key is not read",
			header: nats.Header{"Traceparent": {parentSampled}},
			want:   trace.SpanContext{},
		},
		{name: "invalid traceparent", header: nats.Header{"traceparent": {"00-zz-zz-01"}}, want: trace.SpanContext{}},
		{name: "all-zero trace id", header: nats.Header{"traceparent": {"00-00000000000000000000000000000000-000000000000007b-01"}}, want: trace.SpanContext{}},
		{name: "empty header", header: nats.Header{}, want: trace.SpanContext{}},
		{name: "nil header", header: nil, want: trace.SpanContext{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := Extract(t.Context(), tt.header, WithPropagator(prop))
			if got := trace.SpanContextFromContext(ctx); !got.Equal(tt.want) {
				t.Errorf("extracted %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestInject(t *testing.T) {
	state, err := trace.ParseTraceState(stateStr)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		sc     trace.SpanContext
		header nats.Header
		want   nats.Header
	}{
		{
			name: "nil header is allocated",
			sc:   trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}),
			want: nats.Header{"traceparent": {parentSampled}},
		},
		{
			name: "with tracestate",
			sc:   trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceState: state}),
			want: nats.Header{"traceparent": {parentNotSampled}, "tracestate": {stateStr}},
		},
		{
			name:   "existing headers kept, stale traceparent replaced",
			sc:     trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}),
			header: nats.Header{"Nats-Msg-Id": {"msg_1"}, "traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
			want:   nats.Header{"Nats-Msg-Id": {"msg_1"}, "traceparent": {parentSampled}},
		},
		{
			name: "no span: header allocated, nothing written",
			sc:   trace.SpanContext{},
			want: nats.Header{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := trace.ContextWithSpanContext(t.Context(), tt.sc)
			msg := &nats.Msg{Subject: "clerk.user.created", Header: tt.header}
			Inject(ctx, msg, WithPropagator(prop))
			if msg.Header == nil {
				t.Fatal("Inject left a nil header")
			}
			if len(msg.Header) != len(tt.want) {
				t.Errorf("header %v, want %v", msg.Header, tt.want)
			}
			for k, v := range tt.want {
				// Index the map directly: the key must be exactly lower-case traceparent.
				if got := msg.Header[k]; !slices.Equal(got, v) {
					t.Errorf("header[%q] = %q, want %q (header %v)", k, got, v, msg.Header)
				}
			}
			if _, ok := msg.Header["Traceparent"]; ok {
				t.Error("Inject wrote a canonicalised Traceparent key")
			}
		})
	}
}

func TestInjectExtractRoundTrip(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled})
	msg := &nats.Msg{}
	Inject(trace.ContextWithSpanContext(context.Background(), sc), msg, WithPropagator(prop))
	got := trace.SpanContextFromContext(Extract(context.Background(), msg.Header, WithPropagator(prop)))
	if got.TraceID() != traceID || got.SpanID() != spanID || !got.IsSampled() || !got.IsRemote() {
		t.Errorf("round trip gave %+v", got)
	}
}

// TestWithPropagatorNil: a nil propagator keeps the default, the global one,
// which is a no-op until a program sets it.
func TestWithPropagatorNil(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled})
	msg := &nats.Msg{}
	Inject(trace.ContextWithSpanContext(t.Context(), sc), msg, WithPropagator(nil))
	if msg.Header == nil {
		t.Fatal("nil header")
	}
	if _, ok := msg.Header["traceparent"]; ok {
		t.Error("the default (no-op) propagator wrote traceparent")
	}
}

func TestHeaderCarrier(t *testing.T) {
	h := nats.Header{"A": {"1", "2"}}
	c := HeaderCarrier(h)
	if got := c.Get("A"); got != "1" {
		t.Errorf("Get(A) = %q, want the first value", got)
	}
	if got := c.Get("a"); got != "" {
		t.Errorf("Get(a) = %q: keys are case-sensitive", got)
	}
	c.Set("A", "3")
	c.Set("traceparent", "x")
	if !slices.Equal(h["A"], []string{"3"}) || !slices.Equal(h["traceparent"], []string{"x"}) {
		t.Errorf("Set did not write through to the header: %v", h)
	}
	keys := c.Keys()
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"A", "traceparent"}) {
		t.Errorf("Keys() = %q", keys)
	}
	if len(HeaderCarrier(nil).Keys()) != 0 {
		t.Error("Keys of a nil carrier")
	}
}
