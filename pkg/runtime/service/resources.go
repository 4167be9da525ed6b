package service

import (
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/consume"
)

// Consumer settings the services read, with their defaults; they must stay
// those of services/router/app and services/novu-sink/app.
const (
	// DefaultRouterAckWait is ROUTER_ACK_WAIT's default.
	DefaultRouterAckWait = 30 * time.Second
	// DefaultNovuTimeout is NOVU_TIMEOUT's default; NOVU_ACK_WAIT defaults to
	// [DefaultSinkAckWait] of it.
	DefaultNovuTimeout = 10 * time.Second
	// MinSinkAckWait is the floor of NOVU_ACK_WAIT's default.
	MinSinkAckWait = 30 * time.Second
	// DefaultRouterMaxDeliver is ROUTER_MAX_DELIVER's default.
	DefaultRouterMaxDeliver = 10
	// DefaultSinkMaxDeliver is NOVU_MAX_DELIVER's default.
	DefaultSinkMaxDeliver = 20
)

// DefaultSinkAckWait is NOVU_ACK_WAIT's default for a Novu call timeout:
// max([MinSinkAckWait], 3 × timeout), so a call and its retry fit in it.
func DefaultSinkAckWait(timeout time.Duration) time.Duration { return max(MinSinkAckWait, 3*timeout) }

// Resources reads the settings that shape every JetStream resource of the
// pipeline from the variables the services read: STREAM_* (see [Env.NATS]),
// ROUTES_KV_BUCKET, ROUTER_ACK_WAIT, ROUTER_MAX_DELIVER, NOVU_ACK_WAIT,
// NOVU_TIMEOUT and NOVU_MAX_DELIVER. The
// clerknovu CLI and devstack declare [events.Declared] of them, so what they
// apply is what each service checks at start.
func (e *Env) Resources() events.ResourceOptions {
	nc := e.NATS()
	novuTimeout := e.Duration("NOVU_TIMEOUT", DefaultNovuTimeout)
	sink := []events.ConsumerOption{
		events.WithAckWait(e.Duration("NOVU_ACK_WAIT", DefaultSinkAckWait(novuTimeout))),
		events.WithMaxDeliver(consume.ServerMaxDeliver(e.Int("NOVU_MAX_DELIVER", DefaultSinkMaxDeliver, 1))),
	}
	return events.ResourceOptions{
		Streams: nc.StreamOptions(),
		Router: []events.ConsumerOption{
			events.WithAckWait(e.Duration("ROUTER_ACK_WAIT", DefaultRouterAckWait)),
			events.WithMaxDeliver(consume.ServerMaxDeliver(e.Int("ROUTER_MAX_DELIVER", DefaultRouterMaxDeliver, 1))),
		},
		Sink:         sink,
		SinkSync:     sink, // the sink shapes both of its consumers alike
		RoutesBucket: e.Lookup("ROUTES_KV_BUCKET"),
	}
}
