package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Telemetry is what a service needs to trace: a tracer provider, the W3C
// propagator, and one shutdown function that flushes spans.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	Shutdown       func(context.Context) error
}

// Propagator is the W3C trace-context and baggage propagator every service uses.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// NoTelemetry is tracing off: spans are not recorded, but trace context still
// passes through, so a traceparent sent in reaches Novu.
func NoTelemetry() Telemetry {
	return Telemetry{TracerProvider: noop.NewTracerProvider(), Propagator: Propagator(), Shutdown: func(context.Context) error { return nil }}
}

// SetupTelemetry configures tracing from the standard OTEL_* variables of the
// process environment, which the OTel SDK and its exporters read themselves:
// [autoexport] builds the exporter (OTEL_TRACES_EXPORTER: otlp, console or
// none; OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _PROTOCOL, _HEADERS...), the SDK
// reads OTEL_TRACES_SAMPLER(_ARG), and the resource takes OTEL_SERVICE_NAME
// (default serviceName) and OTEL_RESOURCE_ATTRIBUTES, where a malformed value
// is an error. Unlike autoexport's default (otlp to localhost), with neither
// an exporter nor an endpoint set, or with OTEL_SDK_DISABLED=true, tracing is
// off and costs nothing; trace context still passes through ([NoTelemetry]).
func SetupTelemetry(ctx context.Context, serviceName string) (Telemetry, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return NoTelemetry(), nil
	}
	// The resource is checked even when tracing is off: a malformed value is
	// a mistake to report, not to find the day tracing is turned on.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(serviceName)), resource.WithFromEnv())
	if err != nil {
		return Telemetry{}, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w; want key=value pairs separated by commas, values percent-encoded", err)
	}
	exporter := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))
	if exporter == "" && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return NoTelemetry(), nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		if exporter == "" {
			exporter = "otlp"
		}
		return Telemetry{}, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: %w; want otlp, console or none (OTEL_EXPORTER_OTLP_PROTOCOL http/protobuf or grpc)", exporter, err)
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return NoTelemetry(), nil
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return Telemetry{
		TracerProvider: tp,
		Propagator:     Propagator(),
		Shutdown: func(ctx context.Context) error {
			return errors.Join(tp.ForceFlush(ctx), tp.Shutdown(ctx))
		},
	}, nil
}
