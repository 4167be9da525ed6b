package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the runtime's spans when
// [WithTracing] gives no tracer of the service's.
const ScopeName = "github.com/clerknovu/pipeline/pkg/runtime/consume"

// Runtime consumes one durable pull consumer with one handler. Build it with
// [New], then [Runtime.Run], or [Runtime.Start] and [Runtime.Stop].
type Runtime struct {
	cfg     Config
	src     Source
	pub     Publisher
	handle  HandlerFunc
	batch   *batching
	gate    Gate
	log     *slog.Logger
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	observe Observer
	attrs   func(*Message) []attribute.KeyValue

	hand       *inHand
	results    chan result
	stopping   chan struct{}
	stopCtx    context.Context
	loopDone   chan struct{}
	aliveStop  chan struct{}
	workCtx    context.Context
	cancelWork context.CancelFunc
	started    bool
	stopOnce   sync.Once
	loopErr    error
}

// result is what a worker hands back to the loop: the messages a Pause
// holds, and until when.
type result struct {
	held  []*Message
	until time.Time
}

// New returns a runtime that pulls from src, hands each message to h and
// publishes dead letters with pub.
func New(src Source, pub Publisher, h HandlerFunc, cfg Config, opts ...Option) (*Runtime, error) {
	switch {
	case src == nil:
		return nil, fmt.Errorf("%w: no source consumer", ErrMisconfigured)
	case pub == nil:
		return nil, fmt.Errorf("%w: no dead-letter publisher", ErrMisconfigured)
	case h == nil:
		return nil, fmt.Errorf("%w: no handler", ErrMisconfigured)
	case cfg.Stage == "":
		return nil, fmt.Errorf("%w: no dead-letter stage", ErrMisconfigured)
	}
	cfg.setDefaults()
	r := &Runtime{
		cfg:    cfg,
		src:    src,
		pub:    pub,
		handle: h,
		log:    slog.New(slog.DiscardHandler),
		tracer: noop.NewTracerProvider().Tracer(ScopeName),
		prop:   propagation.TraceContext{},
	}
	for _, o := range opts {
		o(r)
	}
	if r.batch != nil && r.batch.handle == nil {
		return nil, fmt.Errorf("%w: WithBatch without a batch handler", ErrMisconfigured)
	}
	return r, nil
}

// Run consumes until ctx is done, then stops within Config.ShutdownTimeout
// ([Runtime.Stop]). It returns nil after a clean stop.
func (r *Runtime) Run(ctx context.Context) error {
	r.Start(ctx)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ShutdownTimeout)
	defer cancel()
	return r.Stop(sctx)
}

// Start starts pulling and handling in the background. The handlers get a
// context with ctx's values but not its cancellation: a handler in flight at
// shutdown finishes its work, until [Runtime.Stop]'s deadline.
func (r *Runtime) Start(ctx context.Context) {
	if r.started {
		return
	}
	r.started = true
	r.hand = newInHand(r.cfg.AckWait)
	r.results = make(chan result, r.cfg.Concurrency)
	r.stopping = make(chan struct{})
	r.loopDone = make(chan struct{})
	r.aliveStop = make(chan struct{})
	r.workCtx, r.cancelWork = context.WithCancel(context.WithValue(context.WithoutCancel(ctx), stoppingKey{}, r.stopping))
	go r.hand.run(r.aliveStop)
	go func() {
		defer close(r.loopDone)
		r.loopErr = r.loop()
	}()
}

// stoppingKey keys the runtime's stopping channel in the handlers' context.
type stoppingKey struct{}

// Stopping returns a channel closed once [Runtime.Stop] is called, from a
// handler's context (nil, which blocks forever, from any other). A handler
// waiting on back-pressure (a rate-limit token, a Retry-After) selects on it
// and returns a [Pause] at once: the message is NAKed for another instance
// instead of holding the shutdown until its deadline.
func Stopping(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey{}).(chan struct{})
	return ch
}

// Stop stops pulling (a pull in flight completes, so no message goes to a
// pull nobody reads), NAKs the messages held by a Pause or not yet handed
// out, lets the handlers in flight finish and settle, keeping their messages
// alive, and returns once all are done. When ctx's deadline passes first it
// cancels the handlers' context, stops the keep-alive and returns
// [ErrShutdownDeadline]: those messages come back after the ack wait.
func (r *Runtime) Stop(ctx context.Context) error {
	if !r.started {
		return nil
	}
	r.stopOnce.Do(func() {
		r.stopCtx = ctx
		close(r.stopping)
		<-r.loopDone
		close(r.aliveStop)
		r.cancelWork()
	})
	<-r.loopDone
	return r.loopErr
}

// loop pulls and hands out messages until stopping, then drains.
func (r *Runtime) loop() error {
	free := r.cfg.Concurrency
	var ready []*Message // in hand, waiting for a worker
	var pausedUntil time.Time
	// pullCtx ends when stopping, so the gate stops waiting.
	pullCtx, cancelPull := context.WithCancel(r.workCtx)
	defer cancelPull()
	go func() {
		select {
		case <-r.stopping:
			cancelPull()
		case <-pullCtx.Done():
		}
	}()
	collect := func(res result) {
		free++
		if len(res.held) > 0 {
			ready = append(res.held, ready...)
			if res.until.After(pausedUntil) {
				pausedUntil = res.until
			}
		}
	}
	for {
		select {
		case res := <-r.results:
			collect(res)
			continue
		case <-r.stopping:
			return r.drain(ready, free)
		default:
		}
		if wait := time.Until(pausedUntil); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case res := <-r.results:
				collect(res)
			case <-t.C:
			case <-r.stopping:
			}
			t.Stop()
			continue
		}
		if free > 0 && len(ready) > 0 {
			n := 1
			if r.batch != nil && len(ready) >= r.batch.min {
				n = min(len(ready), r.batch.max)
			}
			work := ready[:n:n]
			ready = ready[n:]
			free--
			go r.work(work)
			continue
		}
		if free == 0 {
			select {
			case res := <-r.results:
				collect(res)
			case <-r.stopping:
			}
			continue
		}
		want := free
		if r.batch != nil {
			want = max(free, r.batch.max)
		}
		if r.gate != nil {
			n, err := r.gate.Wait(pullCtx, want)
			if err != nil {
				if pullCtx.Err() == nil {
					r.log.Warn("pull gate failed; retrying", "err", err.Error())
					r.sleep(pullCtx, r.cfg.FetchWait)
				}
				continue
			}
			want = min(max(n, 1), want)
		}
		ready = append(ready, r.pull(pullCtx, want)...)
	}
}

// drain is the shutdown: NAK what was never started, wait for the workers
// until the deadline, NAK what they hand back held.
func (r *Runtime) drain(ready []*Message, free int) error {
	r.giveBack(ready)
	deadline := r.stopCtx.Done()
	for free < r.cfg.Concurrency {
		select {
		case res := <-r.results:
			free++
			r.giveBack(res.held)
		case <-deadline:
			r.cancelWork()
			return fmt.Errorf("%w: %d", ErrShutdownDeadline, r.cfg.Concurrency-free)
		}
	}
	return nil
}

// giveBack NAKs messages never handled, or held by a Pause, for immediate
// redelivery to another instance.
func (r *Runtime) giveBack(ms []*Message) {
	for _, m := range ms {
		err := m.msg.Nak()
		r.hand.remove(m)
		if err != nil {
			r.log.Debug("nak at shutdown failed: the message comes back after the ack wait", "err", err.Error())
		}
		if r.observe != nil {
			r.observe(m.Context(), m, Verdict{}, Settlement{Outcome: Returned, Err: err})
		}
	}
}

// pull returns up to want messages: those available now, or else the first
// to arrive within FetchWait plus any that came with it. It never cancels a
// pull in flight, so no message is delivered to a pull nobody reads.
func (r *Runtime) pull(ctx context.Context, want int) []*Message {
	msgs, err := collectBatch(r.src.FetchNoWait(want))
	if err == nil && len(msgs) == 0 {
		msgs, err = collectBatch(r.src.Fetch(1, jetstream.FetchMaxWait(r.cfg.FetchWait)))
		if err == nil && len(msgs) > 0 && want > 1 {
			var more []jetstream.Msg
			more, err = collectBatch(r.src.FetchNoWait(want - 1))
			msgs = append(msgs, more...)
		}
	}
	if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
		r.log.Warn("pull failed; retrying", "err", err.Error())
		r.sleep(ctx, r.cfg.FetchWait)
	}
	now := time.Now()
	out := make([]*Message, len(msgs))
	for i, msg := range msgs {
		out[i] = newMessage(msg)
		r.hand.add(out[i], now)
	}
	return out
}

// sleep waits for d or ctx.
func (r *Runtime) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// collectBatch reads a whole batch.
func collectBatch(b jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, b.Error()
}
