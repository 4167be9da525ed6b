package consume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	rtconsume "github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/services/router/route"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const waitFor = 10 * time.Second

// staticRules serves fixed rules.
type staticRules struct{ rules *route.Rules }

func (s staticRules) Current() *route.Rules { return s.rules }

func rules(t testing.TB, doc string) Rules {
	t.Helper()
	layers := []route.Layer{route.Defaults()}
	if doc != "" {
		l, err := route.Parse("test", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	rs, err := route.Compose(layers...)
	if err != nil {
		t.Fatal(err)
	}
	return staticRules{rs}
}

// fixture reads one of the route package's realistic Clerk envelopes.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "route", "testdata", "events", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publishEvent stores body on clerk.<typ> the way the receiver does.
func publishEvent(t testing.TB, js jetstream.JetStream, typ, svixID string, body []byte, extra nats.Header) {
	t.Helper()
	subject, err := events.ClerkSubject(typ)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, svixID)
	m.Header.Set(events.SvixIDHeader, svixID)
	m.Header.Set(events.EventTypeHeader, typ)
	m.Header.Set(events.ReceivedAtHeader, "1755500000123")
	for k, v := range extra {
		m.Header[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}

func routerConsumer(t testing.TB, js jetstream.JetStream) jetstream.Consumer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamClerk, events.ConsumerConfig(events.DurableRouter,
		events.WithAckWait(5*time.Second), events.WithMaxDeliver(rtconsume.ServerMaxDeliver(fastConfig().MaxDeliver))))
	if err != nil {
		t.Fatal(err)
	}
	return cons
}

// start runs h on the router consumer until the test ends.
func start(t testing.TB, js jetstream.JetStream, h *Handler, concurrency int) {
	t.Helper()
	r, err := Start(t.Context(), routerConsumer(t, js), h, concurrency, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

func fastConfig() Config {
	return Config{MaxDeliver: 100, PublishTimeout: 2 * time.Second, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		Build: route.BuildOptions{DefaultLocale: "en_US"}}
}

// settled reports whether the router consumer has no event left to handle.
func settled(t testing.TB, js jetstream.JetStream) func() bool {
	return func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, events.StreamClerk, events.DurableRouter)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}
}

func count(js jetstream.JetStream, t testing.TB, stream, filter string) func() bool {
	return func() bool { return len(eventstest.StreamMsgs(t, js, stream, filter)) > 0 }
}

func TestUserCreatedYieldsOneCommand(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	m := NewMetrics()
	h := NewHandler(fastConfig(), js, rules(t, ""), WithMetrics(m), WithTracing(tp, propagation.TraceContext{}))
	start(t, js, h, 4)

	const svixID = "msg_31kQ3PeUfvAkDYuNBzDfJvZzsbA"
	traceID := "4bf92f3577b34da6a3ce929d0e0e4736"
	body := fixture(t, "user.created")
	publishEvent(t, js, "user.created", svixID, body, nats.Header{"traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}})

	eventstest.Eventually(t, waitFor, "the event to be routed and acked", func() bool {
		return count(js, t, events.StreamNovu, ">")() && settled(t, js)()
	})
	msgs := eventstest.StreamMsgs(t, js, events.StreamNovu, ">")
	if len(msgs) != 1 {
		t.Fatalf("%d commands in NOVU, want exactly 1", len(msgs))
	}
	got := msgs[0]
	if got.Subject != "novu.trigger.user-created" {
		t.Errorf("subject = %s, want novu.trigger.user-created", got.Subject)
	}
	txn := events.TransactionID(svixID, "user-created")
	for k, want := range map[string]string{
		jetstream.MsgIDHeader:      txn,
		events.SvixIDHeader:        svixID,
		events.EventTypeHeader:     "user.created",
		events.WorkflowIDHeader:    "user-created",
		events.TransactionIDHeader: txn,
		events.ReceivedAtHeader:    "1755500000123",
	} {
		if v := got.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	cmd, err := events.ParseCommand(got.Data)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.WorkflowID != "user-created" || cmd.TransactionID != txn || cmd.SvixID != svixID || cmd.EventType != "user.created" ||
		cmd.EventTimestamp != 1755500000000 || cmd.ReceivedAt != 1755500000123 {
		t.Errorf("command = %+v", cmd)
	}
	if s := cmd.To.Subscriber; s == nil || s.SubscriberID != "user_u8jzPde0IgxLd6GncfBAepfJBd0" || s.Email != "zoe.nunez@example.com" {
		t.Errorf("recipient = %+v", cmd.To)
	}
	ev, _ := events.ParseEvent(body)
	if string(cmd.Payload) != string(ev.Data) {
		t.Errorf("payload is not the event's data byte for byte")
	}
	if !strings.Contains(string(got.Data), "9007199254740993") {
		t.Error("a big integer lost its digits")
	}

	// Trace: the command carries the event's trace, under the router's spans.
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), events.HeaderCarrier(got.Header)))
	if sc.TraceID().String() != traceID {
		t.Errorf("command trace id = %s, want the event's %s", sc.TraceID(), traceID)
	}
	eventstest.Eventually(t, waitFor, "the spans to end", func() bool { return len(sr.Ended()) >= 2 })
	kinds := map[trace.SpanKind]bool{}
	for _, s := range sr.Ended() {
		kinds[s.SpanKind()] = true
		if s.SpanContext().TraceID().String() != traceID {
			t.Errorf("span %q is in trace %s", s.Name(), s.SpanContext().TraceID())
		}
	}
	if !kinds[trace.SpanKindConsumer] || !kinds[trace.SpanKindProducer] {
		t.Errorf("span kinds = %v, want a consumer and a producer span", kinds)
	}

	if v := testutil.ToFloat64(m.Events.WithLabelValues("user.created", OutcomeRouted)); v != 1 {
		t.Errorf("router_events_total{routed} = %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.Commands.WithLabelValues("user-created")); v != 1 {
		t.Errorf("router_commands_published_total = %v, want 1", v)
	}
}

// flakyPublisher stores the first command but reports a failure, as when a
// PubAck is lost: the event is redelivered and published again.
type flakyPublisher struct {
	Publisher
	calls atomic.Int32
}

func (p *flakyPublisher) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ack, err := p.Publisher.PublishMsg(ctx, m, opts...)
	if p.calls.Add(1) == 1 && err == nil {
		return nil, errors.New("pub ack lost")
	}
	return ack, err
}

func TestRedeliveredEventYieldsNoSecondCommand(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	m := NewMetrics()
	pub := &flakyPublisher{Publisher: js}
	start(t, js, NewHandler(fastConfig(), pub, rules(t, ""), WithMetrics(m)), 2)

	publishEvent(t, js, "session.created", "msg_redelivered", fixture(t, "session.created"), nil)
	eventstest.Eventually(t, waitFor, "the redelivered event to be acked", func() bool {
		return testutil.ToFloat64(m.Events.WithLabelValues("session.created", OutcomeRouted)) == 1 && settled(t, js)()
	})
	if got := len(eventstest.StreamMsgs(t, js, events.StreamNovu, ">")); got != 1 {
		t.Errorf("%d commands in NOVU, want 1", got)
	}
	if v := testutil.ToFloat64(m.Events.WithLabelValues("session.created", OutcomeRetried)); v != 1 {
		t.Errorf("retried = %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.Duplicates.WithLabelValues("recent-login-v2")); v != 1 {
		t.Errorf("duplicates = %v, want 1: the second publish must hit NOVU's duplicate window", v)
	}
}

func TestDeadLetters(t *testing.T) {
	tests := []struct {
		name       string
		subjectTyp string
		body       []byte
		wantSubj   string
		wantReason string
	}{
		{name: "routed to the event's person, and it names none", subjectTyp: "role.created", body: fixture(t, "role.created"),
			wantSubj: "dlq.router.role.created", wantReason: "no recipient: role.created events are instance configuration"},
		{name: "not JSON", subjectTyp: "user.created", body: []byte("<html>502 Bad Gateway</html>"),
			wantSubj: "dlq.router.user.created", wantReason: "invalid event: body is not a JSON object"},
		{name: "an unknown slug that makes no workflow id", subjectTyp: "email.created", body: fixture(t, "email.created.bad_slug"),
			wantSubj: "dlq.router.email.created", wantReason: `invalid workflow id: defaults: rule 3 (match "email.created"): slug "promo.spring sale"`},
		{name: "data of the wrong shape", subjectTyp: "user.created", body: []byte(`{"type":"user.created","data":{"id":"user_1","first_name":7},"object":"event"}`),
			wantSubj: "dlq.router.user.created", wantReason: "invalid event: user.created data: first_name is a JSON number, want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, js := eventstest.RunJetStream(t)
			m := NewMetrics()
			start(t, js, NewHandler(fastConfig(), js, rules(t, "rules:\n  - match: role.*\n    workflows: [role-changed]\n"), WithMetrics(m)), 2)
			publishEvent(t, js, tt.subjectTyp, "msg_dead", tt.body, nil)
			eventstest.Eventually(t, waitFor, "the dead letter and the ack", func() bool {
				return count(js, t, events.StreamDLQ, ">")() && settled(t, js)()
			})
			dl := eventstest.StreamMsgs(t, js, events.StreamDLQ, ">")
			if len(dl) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dl))
			}
			d := dl[0]
			if d.Subject != tt.wantSubj {
				t.Errorf("subject = %s, want %s", d.Subject, tt.wantSubj)
			}
			if r := d.Header.Get(events.DLQReasonHeader); !strings.HasPrefix(r, tt.wantReason) {
				t.Errorf("reason = %q, want it to start with %q", r, tt.wantReason)
			}
			for k, want := range map[string]string{
				events.DLQStageHeader:          events.StageRouter,
				events.DLQSourceSubjectHeader:  "clerk." + tt.subjectTyp,
				events.DLQSourceSequenceHeader: "1",
				events.DLQDeliveriesHeader:     "1",
				events.SvixIDHeader:            "msg_dead",
			} {
				if v := d.Header.Get(k); v != want {
					t.Errorf("header %s = %q, want %q", k, v, want)
				}
			}
			if string(d.Data) != string(tt.body) {
				t.Error("the dead letter does not hold the event unchanged")
			}
			if n := len(eventstest.StreamMsgs(t, js, events.StreamNovu, ">")); n != 0 {
				t.Errorf("%d commands published for a dead-lettered event", n)
			}
			if v := testutil.ToFloat64(m.Events.WithLabelValues(tt.subjectTyp, OutcomeDeadLettered)); v != 1 {
				t.Errorf("dead_lettered = %v, want 1", v)
			}
		})
	}
}

func TestUnroutableEventIsAckedAndCounted(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	m := NewMetrics()
	start(t, js, NewHandler(fastConfig(), js, rules(t, ""), WithMetrics(m)), 2)
	publishEvent(t, js, "apiKey.created", "msg_unknown", fixture(t, "apiKey.created"), nil)
	publishEvent(t, js, "user.updated", "msg_updated", fixture(t, "user.updated"), nil)
	eventstest.Eventually(t, waitFor, "both events acked", func() bool {
		// apiKey.created is not in Clerk's catalog: its label is "other".
		return testutil.ToFloat64(m.Events.WithLabelValues(OtherType, OutcomeSkipped)) == 1 &&
			testutil.ToFloat64(m.Events.WithLabelValues("user.updated", OutcomeSkipped)) == 1 && settled(t, js)()
	})
	if n := len(eventstest.StreamMsgs(t, js, events.StreamNovu, ">")) + len(eventstest.StreamMsgs(t, js, events.StreamDLQ, ">")); n != 0 {
		t.Errorf("%d messages published for unroutable events, want 0", n)
	}
}

func deleteStream(t testing.TB, js jetstream.JetStream, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, name); err != nil {
		t.Fatal(err)
	}
}

func TestPublishFailureRetriesUntilTheStreamIsBack(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	deleteStream(t, js, events.StreamNovu)
	m := NewMetrics()
	start(t, js, NewHandler(fastConfig(), js, rules(t, ""), WithMetrics(m)), 2)
	publishEvent(t, js, "user.created", "msg_retry", fixture(t, "user.created"), nil)

	eventstest.Eventually(t, waitFor, "two failed attempts", func() bool {
		return testutil.ToFloat64(m.Events.WithLabelValues("user.created", OutcomeRetried)) >= 2
	})
	if settled(t, js)() {
		t.Fatal("the event was acked although its command was not stored")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, events.NovuStream()); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, waitFor, "the command once NOVU is back, and the ack", func() bool {
		return count(js, t, events.StreamNovu, ">")() && settled(t, js)()
	})
	if n := len(eventstest.StreamMsgs(t, js, events.StreamNovu, ">")); n != 1 {
		t.Errorf("%d commands, want 1", n)
	}
	if n := len(eventstest.StreamMsgs(t, js, events.StreamDLQ, ">")); n != 0 {
		t.Errorf("%d dead letters, want 0", n)
	}
}

func TestMaxDeliverDeadLetters(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	deleteStream(t, js, events.StreamNovu)
	cfg := fastConfig()
	cfg.MaxDeliver = 3
	m := NewMetrics()
	start(t, js, NewHandler(cfg, js, rules(t, ""), WithMetrics(m)), 2)
	publishEvent(t, js, "user.created", "msg_give_up", fixture(t, "user.created"), nil)

	eventstest.Eventually(t, waitFor, "the dead letter and the ack", func() bool {
		return count(js, t, events.StreamDLQ, ">")() && settled(t, js)()
	})
	d := eventstest.StreamMsgs(t, js, events.StreamDLQ, ">")[0]
	if r := d.Header.Get(events.DLQReasonHeader); !strings.HasPrefix(r, "gave up after 3 deliveries: publish novu.trigger.user-created") {
		t.Errorf("reason = %q", r)
	}
	if v := d.Header.Get(events.DLQDeliveriesHeader); v != "3" {
		t.Errorf("deliveries = %q, want 3", v)
	}
	if v := testutil.ToFloat64(m.Events.WithLabelValues("user.created", OutcomeRetried)); v != 2 {
		t.Errorf("retried = %v, want 2", v)
	}
}

// recordingPublisher records the svix id of every command it publishes and
// holds its first publish until the other instance has published too, so the
// test proves that both instances take part.
type recordingPublisher struct {
	Publisher
	mu      sync.Mutex
	seen    []string
	first   atomic.Bool
	started chan struct{} // closed on the first publish
	other   *recordingPublisher
}

func newRecordingPublisher(p Publisher) *recordingPublisher {
	return &recordingPublisher{Publisher: p, started: make(chan struct{})}
}

func (p *recordingPublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}

func (p *recordingPublisher) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	p.mu.Lock()
	p.seen = append(p.seen, m.Header.Get(events.SvixIDHeader))
	p.mu.Unlock()
	if p.first.CompareAndSwap(false, true) {
		close(p.started)
		select { // hold this instance's first event until the other has one
		case <-p.other.started:
		case <-time.After(5 * time.Second):
		}
	}
	return p.Publisher.PublishMsg(ctx, m, opts...)
}

func TestTwoInstancesShareTheLoad(t *testing.T) {
	s := eventstest.RunServer(t)
	_, js := eventstest.Connect(t, s.ClientURL())
	_, jsA := eventstest.Connect(t, s.ClientURL())
	_, jsB := eventstest.Connect(t, s.ClientURL())
	a, b := newRecordingPublisher(jsA), newRecordingPublisher(jsB)
	a.other, b.other = b, a
	start(t, jsA, NewHandler(fastConfig(), a, rules(t, "")), 1)
	start(t, jsB, NewHandler(fastConfig(), b, rules(t, "")), 1)

	const n = 40
	body := fixture(t, "user.created")
	for i := range n {
		publishEvent(t, js, "user.created", "msg_load_"+strconv.Itoa(i), body, nil)
	}
	eventstest.Eventually(t, waitFor, "every event routed", func() bool {
		return len(eventstest.StreamMsgs(t, js, events.StreamNovu, ">")) == n && settled(t, js)()
	})
	handled := map[string]int{}
	for _, p := range []*recordingPublisher{a, b} {
		p.mu.Lock()
		for _, id := range p.seen {
			handled[id]++
		}
		p.mu.Unlock()
	}
	if len(handled) != n {
		t.Errorf("%d distinct events handled, want %d", len(handled), n)
	}
	for id, times := range handled {
		if times != 1 {
			t.Errorf("%s handled %d times", id, times)
		}
	}
	if a.count() == 0 || b.count() == 0 {
		t.Errorf("instance A handled %d, B %d: both must take part", a.count(), b.count())
	}
}
