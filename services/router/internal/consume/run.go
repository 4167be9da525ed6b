package consume

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Running is a started consumer; stop it with [Running.Stop].
type Running struct {
	cc  jetstream.ConsumeContext
	sem chan struct{}
}

// Start consumes cons with h, handling at most concurrency events at a time
// (and buffering as many), until [Running.Stop]. The handlers run with a
// context that keeps ctx's values but not its cancellation, so an event in
// flight at shutdown still finishes its publishes and its ack.
func Start(ctx context.Context, cons jetstream.Consumer, h *Handler, concurrency int, log *slog.Logger) (*Running, error) {
	if concurrency < 1 {
		concurrency = 1
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := context.WithoutCancel(ctx)
	r := &Running{sem: make(chan struct{}, concurrency)}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		r.sem <- struct{}{} // blocks the delivery while every worker is busy
		go func() {
			defer func() { <-r.sem }()
			h.Handle(base, msg)
		}()
	},
		jetstream.PullMaxMessages(concurrency),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.Warn("consume", "err", err.Error())
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	r.cc = cc
	return r, nil
}

// Stop stops pulling, lets the buffered and in-flight events finish (each is
// acked, retried or dead-lettered), and returns when all are done or timeout
// has passed.
func (r *Running) Stop(timeout time.Duration) error {
	deadline := time.After(timeout)
	r.cc.Drain()
	select {
	case <-r.cc.Closed():
	case <-deadline:
		r.cc.Stop()
		return fmt.Errorf("consumer not drained after %v", timeout)
	}
	// Every worker slot taken back means no handler is running.
	for taken := 0; taken < cap(r.sem); taken++ {
		select {
		case r.sem <- struct{}{}:
		case <-deadline:
			r.release(taken)
			return fmt.Errorf("events still in flight after %v", timeout)
		}
	}
	r.release(cap(r.sem))
	return nil
}

// release gives back n worker slots.
func (r *Running) release(n int) {
	for range n {
		<-r.sem
	}
}
