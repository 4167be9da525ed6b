package consume

import (
	"context"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	rtconsume "github.com/clerknovu/pipeline/pkg/runtime/consume"
)

// Start consumes cons with h on the shared consume runtime, handling at most
// concurrency events at a time, until the returned runtime's Stop. ackWait
// is the consumer's ack wait (the keep-alive runs every third of it). The
// handlers run with ctx's values but not its cancellation, so an event in
// flight at shutdown still finishes its publishes and its settling.
func Start(ctx context.Context, cons rtconsume.Source, h *Handler, concurrency int, ackWait time.Duration) (*rtconsume.Runtime, error) {
	rt, err := rtconsume.New(cons, h.pub, h.Handle, rtconsume.Config{
		Stage:          events.StageRouter,
		Concurrency:    concurrency,
		AckWait:        ackWait,
		MaxDeliver:     h.cfg.MaxDeliver,
		BackoffMin:     h.cfg.BackoffMin,
		BackoffMax:     h.cfg.BackoffMax,
		PublishTimeout: h.cfg.PublishTimeout,
	}, rtconsume.WithLogger(h.log), rtconsume.WithTracing(h.tracer, h.propagator), rtconsume.WithObserver(h.Observe),
		rtconsume.WithAttributes(h.SpanAttributes))
	if err != nil {
		return nil, err
	}
	rt.Start(ctx)
	return rt, nil
}
