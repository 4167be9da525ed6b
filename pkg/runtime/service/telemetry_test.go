package service

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// otelVars are the variables SetupTelemetry, autoexport and the SDK read;
// each test case starts with all of them empty.
var otelVars = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
}

func TestSetupTelemetry(t *testing.T) {
	const endpoint = "http://127.0.0.1:4318"
	tests := []struct {
		name          string
		env           map[string]string
		wantRecording bool
		wantResource  map[string]string
		wantErr       string
	}{
		{name: "nothing set: off", env: nil},
		{name: "exporter none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}},
		{name: "console", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, wantRecording: true,
			wantResource: map[string]string{"service.name": "test", "telemetry.sdk.language": "go"}},
		{name: "endpoint alone means otlp", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, wantRecording: true},
		{name: "traces endpoint alone means otlp", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint + "/v1/traces"}, wantRecording: true},
		{name: "otlp grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, wantRecording: true},
		{name: "service name and attributes from the environment",
			env:           map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_SERVICE_NAME": "router-eu", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod,team=notify%20ops"},
			wantRecording: true, wantResource: map[string]string{"service.name": "router-eu", "deployment.environment.name": "prod", "team": "notify ops"}},
		{name: "sampler from the environment", env: map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "always_off"}},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, wantErr: "OTEL_TRACES_EXPORTER=jaeger"},
		{name: "unknown protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: "protocol"},
		{name: "malformed resource attributes", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_RESOURCE_ATTRIBUTES": "team"}, wantErr: "OTEL_RESOURCE_ATTRIBUTES"},
		{name: "malformed resource attributes with tracing off", env: map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "a=1,team"}, wantErr: "OTEL_RESOURCE_ATTRIBUTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range otelVars {
				t.Setenv(k, tt.env[k])
			}
			tel, err := SetupTelemetry(t.Context(), "test")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(OneLine(err), "\n") {
					t.Fatalf("err = %v, want one line naming %s", err, tt.wantErr)
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
			if len(tt.wantResource) == 0 {
				return
			}
			ro, ok := span.(sdktrace.ReadOnlySpan)
			if !ok {
				t.Fatalf("span %T is not an SDK span", span)
			}
			for k, want := range tt.wantResource {
				if got, _ := ro.Resource().Set().Value(attribute.Key(k)); got.Emit() != want {
					t.Errorf("resource %s = %q, want %q", k, got.Emit(), want)
				}
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
