package consume_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPauseHoldsTheDeliveryAndPausesConsumption runs two workers, one held
// by msg_busy, so the loop can pull nothing more until it has collected
// msg_pause's first Pause: msg_other, published after that Pause and before
// it ends, and msg_busy's worker, freed during it, must both wait for its end.
func TestPauseHoldsTheDeliveryAndPausesConsumption(t *testing.T) {
	// The three pauses hold msg_pause for about 0.9 s: an ack wait well
	// above that keeps this test about pauses, not about the keep-alive.
	e := newEnv(t, 5*time.Second, 10, nil)
	type call struct {
		id        string
		delivered uint64
		calls     int
		at        time.Time
	}
	var mu sync.Mutex
	var seen []call
	var pauseEnd, firstPauseEnd time.Time
	paused := make(chan struct{})
	release := make(chan struct{})
	cfg := fastConfig()
	cfg.Concurrency = 2
	cfg.AckWait = 5 * time.Second
	rt, err := consume.New(e.cons, e.js, func(_ context.Context, m *consume.Message) consume.Verdict {
		id := m.Header.Get(events.SvixIDHeader)
		mu.Lock()
		seen = append(seen, call{id, m.NumDelivered, m.Calls, time.Now()})
		pause := id == "msg_pause" && m.Calls <= 3
		if pause {
			pauseEnd = time.Now().Add(300 * time.Millisecond)
			if m.Calls == 1 {
				firstPauseEnd = pauseEnd
			}
		}
		until := pauseEnd
		mu.Unlock()
		switch {
		case id == "msg_busy":
			<-release
			return consume.Ack()
		case !pause:
			return consume.Ack()
		case m.Calls == 1:
			close(paused)
		}
		return consume.Pause(until, errors.New("novu 429"))
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, "msg_busy", []byte(`{}`))
	e.publish(t, "msg_pause", []byte(`{}`))
	start(t, rt)
	select {
	case <-paused:
	case <-time.After(waitFor):
		t.Fatal("msg_pause never handled")
	}
	e.publish(t, "msg_other", []byte(`{}`))
	close(release)
	eventstest.Eventually(t, waitFor, "all acked", func() bool { return e.info(t).AckFloor.Stream == 3 })

	mu.Lock()
	defer mu.Unlock()
	var pausedCalls, lastPausedCall int
	var prevEnd time.Time
	for _, c := range seen {
		if c.id != "msg_pause" {
			continue
		}
		pausedCalls++
		lastPausedCall = c.calls
		if c.delivered != 1 {
			t.Errorf("call %d saw NumDelivered %d, want 1: a pause must not use up deliveries", c.calls, c.delivered)
		}
		if c.at.Before(prevEnd) {
			t.Errorf("call %d at %v, before the pause that ended at %v", c.calls, c.at, prevEnd)
		}
		prevEnd = c.at.Add(300 * time.Millisecond)
	}
	if pausedCalls != 4 || lastPausedCall != 4 {
		t.Errorf("paused message handled %d times (last Calls %d), want 4 (3 pauses, then ack)", pausedCalls, lastPausedCall)
	}
	for _, c := range seen {
		if c.id == "msg_other" && c.at.Before(firstPauseEnd) {
			t.Errorf("msg_other handled at %v, during the pause that ended at %v", c.at, firstPauseEnd)
		}
	}
	if ci := e.info(t); ci.NumRedelivered != 0 || ci.Delivered.Consumer != 3 {
		t.Errorf("consumer delivered %d times (%d redelivered), want 3 deliveries and no redelivery", ci.Delivered.Consumer, ci.NumRedelivered)
	}
}

func TestBatchHandlerGetsRunsAndVerdictsApplyOneByOne(t *testing.T) {
	e := newEnv(t, time.Second, 10, nil)
	for i := range 20 {
		e.publish(t, "msg_batch_"+strconv.Itoa(i), []byte(`{}`))
	}
	var mu sync.Mutex
	var sizes []int
	var singles atomic.Int32
	cfg := fastConfig()
	cfg.Concurrency = 1
	rt, err := consume.New(e.cons, e.js, func(_ context.Context, m *consume.Message) consume.Verdict {
		singles.Add(1)
		return consume.Ack()
	}, cfg, consume.WithBatch(5, 10, func(_ context.Context, ms []*consume.Message) []consume.Verdict {
		mu.Lock()
		sizes = append(sizes, len(ms))
		mu.Unlock()
		vs := make([]consume.Verdict, len(ms))
		for i, m := range ms {
			vs[i] = consume.Ack()
			if m.Header.Get(events.SvixIDHeader) == "msg_batch_7" {
				vs[i] = consume.DeadLetter("novu 422: refused").WithDetails(consume.Details{HTTPStatus: 422})
			}
		}
		return vs
	}))
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	eventstest.Eventually(t, waitFor, "every message settled", func() bool {
		ci := e.info(t)
		return ci.AckFloor.Stream == 20 && ci.NumAckPending == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[0] != 10 || sizes[1] != 10 || singles.Load() != 0 {
		t.Errorf("batches %v and %d single calls, want two batches of 10", sizes, singles.Load())
	}
	dls := eventstest.StreamMsgs(t, e.js, events.StreamDLQ, ">")
	if len(dls) != 1 || dls[0].Header.Get(events.SvixIDHeader) != "msg_batch_7" || dls[0].Header.Get(events.DLQHTTPStatusHeader) != "422" {
		t.Errorf("dead letters %d, want only msg_batch_7 with status 422", len(dls))
	}
}

func TestKeepAliveCoversAHandlerLongerThanTheAckWait(t *testing.T) {
	e := newEnv(t, time.Second, 10, nil)
	var calls atomic.Int32
	rt, err := consume.New(e.cons, e.js, func(ctx context.Context, m *consume.Message) consume.Verdict {
		calls.Add(1)
		time.Sleep(2500 * time.Millisecond)
		return consume.Ack()
	}, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	e.publish(t, "msg_slow", []byte(`{}`))
	eventstest.Eventually(t, waitFor, "acked", func() bool { return e.info(t).AckFloor.Stream == 1 })
	if n := calls.Load(); n != 1 {
		t.Errorf("handled %d times, want once: the ack wait passed without a keep-alive", n)
	}
	if ci := e.info(t); ci.Delivered.Consumer != 1 {
		t.Errorf("delivered %d times, want once", ci.Delivered.Consumer)
	}
}

func TestShutdownFinishesInFlightAndReturnsTheRest(t *testing.T) {
	e := newEnv(t, 30*time.Second, 10, nil)
	const n = 10
	for i := range n {
		e.publish(t, "msg_stop_"+strconv.Itoa(i), []byte(`{}`))
	}
	var mu sync.Mutex
	handled := map[string]int{}
	inFlight := make(chan struct{}, n)
	handler := func(_ context.Context, m *consume.Message) consume.Verdict {
		inFlight <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		handled[m.Header.Get(events.SvixIDHeader)]++
		mu.Unlock()
		return consume.Ack()
	}
	cfg := fastConfig()
	cfg.Concurrency = 2
	rt, err := consume.New(e.cons, e.js, handler, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rt.Start(t.Context())
	<-inFlight
	<-inFlight
	const budget = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	began := time.Now()
	if err := rt.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if took := time.Since(began); took > budget {
		t.Errorf("stop took %v, over its budget %v", took, budget)
	}
	mu.Lock()
	first := len(handled)
	mu.Unlock()
	if first < 2 {
		t.Errorf("%d handled before the stop returned, want the 2 in flight finished", first)
	}
	// Another instance takes the rest at once: they were NAKed, not left to
	// the ack wait (30 s, longer than the wait below).
	rt2, err := consume.New(e.cons, e.js, handler, cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt2)
	eventstest.Eventually(t, waitFor, "the rest handled by the second instance", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == n
	})
	mu.Lock()
	defer mu.Unlock()
	for id, times := range handled {
		if times != 1 {
			t.Errorf("%s handled %d times, want once", id, times)
		}
	}
}

func TestShutdownDeadlineCancelsHandlers(t *testing.T) {
	e := newEnv(t, 5*time.Second, 10, nil)
	e.publish(t, "msg_stuck", []byte(`{}`))
	started := make(chan struct{})
	var once sync.Once
	rt, err := consume.New(e.cons, e.js, func(ctx context.Context, m *consume.Message) consume.Verdict {
		once.Do(func() { close(started) })
		<-ctx.Done()
		return consume.Retry(0, ctx.Err())
	}, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	rt.Start(t.Context())
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := rt.Stop(ctx); !errors.Is(err, consume.ErrShutdownDeadline) {
		t.Fatalf("stop = %v, want ErrShutdownDeadline", err)
	}
	if err := rt.Stop(ctx); !errors.Is(err, consume.ErrShutdownDeadline) { // a second Stop is harmless
		t.Fatalf("second stop = %v, want the same error", err)
	}
	eventstest.Eventually(t, waitFor, "the canceled handler's message NAKed, not acked", func() bool {
		ci := e.info(t)
		return ci.AckFloor.Stream == 0 && ci.NumAckPending+ci.NumRedelivered+int(ci.NumPending) >= 1
	})
}

// failingDLQ fails the first dead-letter publishes.
type failingDLQ struct {
	consume.Publisher
	fails atomic.Int32
}

func (p *failingDLQ) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if p.fails.Add(-1) >= 0 {
		return nil, nats.ErrTimeout
	}
	return p.Publisher.PublishMsg(ctx, m, opts...)
}

func TestDeadLetterNotStoredIsRetriedNotTerminated(t *testing.T) {
	e := newEnv(t, time.Second, 10, nil)
	terminated := e.terminated(t)
	pub := &failingDLQ{Publisher: e.js}
	pub.fails.Store(1)
	var deliveries atomic.Int32
	rt, err := consume.New(e.cons, pub, func(_ context.Context, m *consume.Message) consume.Verdict {
		deliveries.Add(1)
		return consume.DeadLetter("invalid event")
	}, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	e.publish(t, "msg_dlq_down", []byte(`{}`))
	eventstest.Eventually(t, waitFor, "dead-lettered on the second delivery", func() bool {
		return len(terminated()) == 1 && len(eventstest.StreamMsgs(t, e.js, events.StreamDLQ, ">")) == 1
	})
	if n := deliveries.Load(); n != 2 {
		t.Errorf("%d deliveries, want 2 (the first dead letter was not stored: NAKed)", n)
	}
}

func TestDeadLetterFitsASmallMaxPayload(t *testing.T) {
	const maxPayload = 64 << 10
	e := newEnv(t, time.Second, 10, func(o *server.Options) { o.MaxPayload = maxPayload })
	terminated := e.terminated(t)
	body := bytes.Repeat([]byte("x"), maxPayload-300) // fits the source, not a copy with the DLQ headers
	rt, err := consume.New(e.cons, e.js, func(_ context.Context, m *consume.Message) consume.Verdict {
		return consume.DeadLetter("invalid event: " + string(bytes.Repeat([]byte("r"), 200)))
	}, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	e.publish(t, "msg_big", body)
	eventstest.Eventually(t, waitFor, "dead-lettered", func() bool { return len(terminated()) == 1 })
	dls := eventstest.StreamMsgs(t, e.js, events.StreamDLQ, ">")
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	dl := dls[0]
	if got := dl.Header.Get(events.DLQTruncatedHeader); got != strconv.Itoa(len(body)) {
		t.Errorf("%s = %q, want %d", events.DLQTruncatedHeader, got, len(body))
	}
	if len(dl.Data) == 0 || len(dl.Data) >= len(body) {
		t.Errorf("dead letter body %d bytes, want cut under %d", len(dl.Data), len(body))
	}
	if dl.Header.Get(events.DLQSourceSequenceHeader) != "1" || dl.Header.Get(events.DLQSourceStreamHeader) != events.StreamClerk {
		t.Errorf("pointer %s/%s, want CLERK/1", dl.Header.Get(events.DLQSourceStreamHeader), dl.Header.Get(events.DLQSourceSequenceHeader))
	}
}

func TestGateIsAskedBeforeEveryPullAndCapsIt(t *testing.T) {
	e := newEnv(t, 5*time.Second, 10, nil)
	for i := range 6 {
		e.publish(t, "msg_gate_"+strconv.Itoa(i), []byte(`{}`))
	}
	open := make(chan struct{})
	var mu sync.Mutex
	var asked []int
	var handled atomic.Int32
	var inFlight, most atomic.Int32
	gate := consume.GateFunc(func(ctx context.Context, n int) (int, error) {
		mu.Lock()
		asked = append(asked, n)
		mu.Unlock()
		select {
		case <-open:
			return 1, nil // one at a time, as a half-open breaker would
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	rt, err := consume.New(e.cons, e.js, func(_ context.Context, m *consume.Message) consume.Verdict {
		now := inFlight.Add(1)
		for {
			old := most.Load()
			if now <= old || most.CompareAndSwap(old, now) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
		handled.Add(1)
		return consume.Ack()
	}, fastConfig(), consume.WithGate(gate))
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	time.Sleep(200 * time.Millisecond)
	if n := handled.Load(); n != 0 {
		t.Fatalf("%d handled while the gate was closed, want 0", n)
	}
	if ci := e.info(t); ci.Delivered.Consumer != 0 {
		t.Fatalf("%d delivered while the gate was closed, want 0: the backlog stays in the stream", ci.Delivered.Consumer)
	}
	close(open)
	eventstest.Eventually(t, waitFor, "all handled", func() bool { return handled.Load() == 6 })
	mu.Lock()
	defer mu.Unlock()
	if len(asked) < 6 || asked[0] != consume.DefaultConcurrency {
		t.Errorf("gate asked %v, want once per pull (at least 6), first for %d", asked, consume.DefaultConcurrency)
	}
}

func TestStoppingTellsAWaitingHandlerToPause(t *testing.T) {
	e := newEnv(t, 30*time.Second, 10, nil)
	e.publish(t, "msg_waiting", []byte(`{}`))
	started := make(chan struct{})
	var calls atomic.Int32
	rt, err := consume.New(e.cons, e.js, func(ctx context.Context, m *consume.Message) consume.Verdict {
		if calls.Add(1) == 1 {
			close(started)
		}
		select { // waiting for a rate-limit token that comes late
		case <-consume.Stopping(ctx):
			return consume.Pause(time.Now().Add(time.Minute), errors.New("stopping"))
		case <-time.After(time.Minute):
			return consume.Ack()
		}
	}, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	rt.Start(t.Context())
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rt.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// NAKed at once: a second instance gets it well before the 30 s ack wait.
	got := make(chan uint64, 1)
	rt2, err := consume.New(e.cons, e.js, func(_ context.Context, m *consume.Message) consume.Verdict {
		select {
		case got <- m.NumDelivered:
		default:
		}
		return consume.Ack()
	}, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt2)
	select {
	case n := <-got:
		if n != 2 {
			t.Errorf("redelivered as delivery %d, want 2", n)
		}
	case <-time.After(waitFor):
		t.Fatal("the held message was not returned at shutdown")
	}
}
