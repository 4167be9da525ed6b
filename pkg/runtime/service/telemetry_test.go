package service

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestSetupTelemetry(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		wantRecording bool
		wantErr       string
	}{
		{name: "nothing set: off", env: nil},
		{name: "exporter none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}},
		{name: "console", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, wantRecording: true},
		{name: "endpoint alone means otlp", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, wantRecording: true},
		{name: "otlp grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, wantRecording: true},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, wantErr: "OTEL_TRACES_EXPORTER"},
		{name: "unknown protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel, err := SetupTelemetry(t.Context(), func(k string) string { return tt.env[k] }, "test")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithCancel(context.Background())
				cancel() // nothing listens: do not wait for an export
				_ = tel.Shutdown(ctx)
			}()
			_, span := tel.TracerProvider.Tracer("t").Start(t.Context(), "s")
			defer span.End()
			if got := span.IsRecording(); got != tt.wantRecording {
				t.Errorf("span recording = %v, want %v", got, tt.wantRecording)
			}
			if tel.Propagator == nil {
				t.Error("no propagator")
			}
		})
	}
}

// With tracing off, an incoming trace context still passes through: the
// non-recording span keeps the remote parent's trace id.
func TestNoTelemetryPassesContextThrough(t *testing.T) {
	tel := NoTelemetry()
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(t.Context(), parent)
	_, span := tel.TracerProvider.Tracer("t").Start(ctx, "s")
	if span.SpanContext().TraceID() != parent.TraceID() {
		t.Errorf("trace id = %s, want %s", span.SpanContext().TraceID(), parent.TraceID())
	}
}
