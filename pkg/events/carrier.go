package events

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderCarrier adapts nats.Header to a propagation.TextMapCarrier. Unlike
// propagation.HeaderCarrier over http.Header it does not canonicalise keys: NATS
// headers are case-sensitive, and the W3C keys stay lower-case traceparent and
// tracestate.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier{}

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set sets key to value, replacing any value.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the keys stored in the carrier.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

type carrierConfig struct {
	propagator propagation.TextMapPropagator
}

// CarrierOption configures [Inject] and [Extract].
type CarrierOption func(*carrierConfig)

// WithPropagator uses p instead of otel.GetTextMapPropagator().
func WithPropagator(p propagation.TextMapPropagator) CarrierOption {
	return func(c *carrierConfig) {
		if p != nil {
			c.propagator = p
		}
	}
}

func newCarrierConfig(opts []CarrierOption) carrierConfig {
	c := carrierConfig{propagator: otel.GetTextMapPropagator()}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Inject writes the trace context of ctx into msg's headers, allocating them when nil.
func Inject(ctx context.Context, msg *nats.Msg, opts ...CarrierOption) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	newCarrierConfig(opts).propagator.Inject(ctx, HeaderCarrier(msg.Header))
}

// Extract returns ctx with the trace context found in h.
func Extract(ctx context.Context, h nats.Header, opts ...CarrierOption) context.Context {
	if h == nil {
		return ctx
	}
	return newCarrierConfig(opts).propagator.Extract(ctx, HeaderCarrier(h))
}
