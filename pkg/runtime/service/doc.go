// Package service is the plumbing the three services share, so no main repeats
// it: reading configuration from the environment (with <NAME>_FILE secrets and
// one-line errors), connecting to NATS with every supported kind of auth and
// reconnecting forever, provisioning the streams, structured logging that
// carries the trace id, /healthz /readyz /metrics, and OpenTelemetry tracing set
// up from the standard OTEL_* variables.
package service
