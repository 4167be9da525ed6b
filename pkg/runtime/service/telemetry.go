package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
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

// SetupTelemetry configures tracing from the standard variables only:
// OTEL_TRACES_EXPORTER (otlp, console or none), OTEL_EXPORTER_OTLP_ENDPOINT /
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL /
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (http/protobuf or grpc), OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG) and OTEL_SDK_DISABLED.
// With no exporter and no endpoint set, tracing is off and costs nothing.
func SetupTelemetry(ctx context.Context, getenv func(string) string, serviceName string) (Telemetry, error) {
	exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	endpoint := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") + getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || exporter == "none" || (exporter == "" && endpoint == "") {
		return NoTelemetry(), nil
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch exporter {
	case "", "otlp":
		protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if protocol == "" {
			protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		switch protocol {
		case "", "http/protobuf":
			exp, err = otlptracehttp.New(ctx)
		case "grpc":
			exp, err = otlptracegrpc.New(ctx)
		default:
			return Telemetry{}, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: want http/protobuf or grpc, got %q", protocol)
		}
	case "console":
		exp, err = stdouttrace.New(stdouttrace.WithWriter(os.Stderr))
	default:
		return Telemetry{}, fmt.Errorf("OTEL_TRACES_EXPORTER: want otlp, console or none, got %q", exporter)
	}
	if err != nil {
		return Telemetry{}, fmt.Errorf("tracing exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(semconv.ServiceName(serviceName)))
	if err != nil {
		return Telemetry{}, fmt.Errorf("tracing resource: %w", err)
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the default name.
	if envRes, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, envRes); err == nil {
			res = merged
		}
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
