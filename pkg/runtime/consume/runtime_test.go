package consume_test

import (
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

const waitFor = 10 * time.Second

// env is one embedded server with the CLERK stream and the router's durable
// consumer on it.
type env struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	cons jetstream.Consumer
}

func newEnv(t *testing.T, ackWait time.Duration, serverMaxDeliver int, configure func(*server.Options)) *env {
	t.Helper()
	s := eventstest.RunServerWith(t, configure)
	nc, js := eventstest.Connect(t, s.ClientURL())
	cfg := events.ConsumerConfig(events.DurableRouter, events.WithAckWait(ackWait), events.WithMaxDeliver(serverMaxDeliver))
	cons, err := js.CreateOrUpdateConsumer(t.Context(), events.StreamClerk, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{nc: nc, js: js, cons: cons}
}

func (e *env) publish(t *testing.T, id string, body []byte) {
	t.Helper()
	m := nats.NewMsg("clerk.user.created")
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Header.Set(events.SvixIDHeader, id)
	m.Data = body
	if _, err := e.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}

// fastConfig keeps retries and pulls short.
func fastConfig() consume.Config {
	return consume.Config{
		Stage:      events.StageRouter,
		Suffix:     func(s string) string { typ, _ := events.EventTypeFromSubject(s); return typ },
		AckWait:    time.Second,
		BackoffMin: 10 * time.Millisecond,
		BackoffMax: 20 * time.Millisecond,
		FetchWait:  100 * time.Millisecond,
		MaxDeliver: 3,
	}
}

// start runs rt until the test ends, and stops it with a 5 s budget.
func start(t *testing.T, rt *consume.Runtime) {
	t.Helper()
	rt.Start(t.Context())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rt.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

// info returns the consumer's state.
func (e *env) info(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	ci, err := e.cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

// settled reports that every message was delivered and none is pending.
func (e *env) settled(t *testing.T) func() bool {
	return func() bool {
		ci := e.info(t)
		return ci.NumPending == 0 && ci.NumAckPending == 0 && ci.NumRedelivered == 0
	}
}

// terminated lists the stream sequences terminated so far.
func (e *env) terminated(t *testing.T) func() []uint64 { return eventstest.Terminations(t, e.nc) }

func TestAck(t *testing.T) {
	e := newEnv(t, time.Second, 10, nil)
	var calls atomic.Int32
	rt, err := consume.New(e.cons, e.js, func(_ context.Context, m *consume.Message) consume.Verdict {
		calls.Add(1)
		return consume.Ack()
	}, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	for i := range 5 {
		e.publish(t, "msg_ack_"+strconv.Itoa(i), []byte(`{}`))
	}
	eventstest.Eventually(t, waitFor, "every message acked", func() bool {
		return calls.Load() == 5 && e.info(t).AckFloor.Stream == 5
	})
	if n := len(eventstest.StreamMsgs(t, e.js, events.StreamDLQ, ">")); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

func TestRetryDeadLettersOnTheLastDeliveryAndTerminates(t *testing.T) {
	e := newEnv(t, time.Second, consume.ServerMaxDeliver(3), nil)
	terminated := e.terminated(t)
	var mu sync.Mutex
	var deliveries []uint64
	rt, err := consume.New(e.cons, e.js, func(_ context.Context, m *consume.Message) consume.Verdict {
		mu.Lock()
		deliveries = append(deliveries, m.NumDelivered)
		mu.Unlock()
		return consume.Retry(0, errors.New("downstream broken"))
	}, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	e.publish(t, "msg_retry", []byte(`{"x":1}`))
	eventstest.Eventually(t, waitFor, "dead letter stored and source terminated", func() bool {
		return len(eventstest.StreamMsgs(t, e.js, events.StreamDLQ, ">")) == 1 && len(terminated()) == 1
	})
	dl := eventstest.StreamMsgs(t, e.js, events.StreamDLQ, ">")[0]
	if got, want := dl.Header.Get(events.DLQReasonHeader), "gave up after 3 deliveries: downstream broken"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	if got := dl.Header.Get(events.DLQSourceStreamHeader); got != events.StreamClerk {
		t.Errorf("source stream %q, want CLERK", got)
	}
	if dl.Subject != "dlq.router.user.created" {
		t.Errorf("dead letter subject %q", dl.Subject)
	}
	if seq := terminated()[0]; seq != 1 {
		t.Errorf("terminated stream sequence %d, want 1", seq)
	}
	eventstest.Eventually(t, waitFor, "consumer settled", e.settled(t))
	time.Sleep(100 * time.Millisecond) // a redelivery would show up within the backoff
	mu.Lock()
	defer mu.Unlock()
	if want := []uint64{1, 2, 3}; !equal(deliveries, want) {
		t.Errorf("deliveries %v, want %v", deliveries, want)
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
