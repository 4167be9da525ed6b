package consume

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	rt "github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

const testKey = "sk_test_novufake"

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.records = append(l.records, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// at returns the records at level.
func (l *logRecorder) at(level slog.Level) []slog.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []slog.Record
	for _, r := range l.records {
		if r.Level == level {
			out = append(out, r)
		}
	}
	return out
}

// harness runs a sink against an embedded JetStream and a fake Novu.
type harness struct {
	t    *testing.T
	nc   *nats.Conn
	js   jetstream.JetStream
	url  string
	fake *novufake.Server
	logs *logRecorder
	reg  *prometheus.Registry
	sink *Sink
	stop func()
}

// testConfig is fast: short backoffs, breaker and fetch waits.
func testConfig() Config {
	return Config{
		Concurrency:     4,
		BulkMin:         50,
		MaxDeliver:      1000,
		RetryBase:       20 * time.Millisecond,
		RetryMax:        200 * time.Millisecond,
		BreakerFailures: 3,
		BreakerOpen:     300 * time.Millisecond,
		AckWait:         5 * time.Second,
		FetchWait:       100 * time.Millisecond,
	}
}

func newHarness(t *testing.T, fakeOpts ...novufake.Option) *harness {
	t.Helper()
	s := eventstest.RunServer(t)
	nc, js := eventstest.Connect(t, s.ClientURL())
	fake := novufake.NewServer(testKey, fakeOpts...)
	t.Cleanup(fake.Close)
	return &harness{t: t, nc: nc, js: js, url: s.ClientURL(), fake: fake, logs: &logRecorder{}, reg: prometheus.NewRegistry()}
}

// newSink builds a sink over js calling the fake with key.
func (h *harness) newSink(cfg Config, js jetstream.JetStream, key string) *Sink {
	h.t.Helper()
	var notifier Notifier
	if !cfg.DryRun {
		c, err := novu.New(novu.Config{BaseURL: h.fake.URL, SecretKey: key, Timeout: 2 * time.Second,
			HTTPClient: novu.NewHTTPClient(cfg.Concurrency, nil, nil)})
		if err != nil {
			h.t.Fatalf("novu.New: %v", err)
		}
		notifier = c
	}
	sink, err := New(cfg, Deps{Logger: slog.New(h.logs), Registerer: h.reg, Notifier: notifier, Publisher: js})
	if err != nil {
		h.t.Fatalf("consume.New: %v", err)
	}
	return sink
}

// start runs a sink (calling the fake with testKey) until the test ends or stop is called.
func (h *harness) start(cfg Config) {
	h.t.Helper()
	h.startWith(cfg, h.js, testKey)
}

func (h *harness) startWith(cfg Config, js jetstream.JetStream, key string) {
	h.t.Helper()
	h.sink = h.newSink(cfg, js, key)
	h.stop = h.run(h.sink, js, cfg)
}

// run runs sink on the durable consumer; the returned stop waits for Run to return.
func (h *harness) run(sink *Sink, js jetstream.JetStream, cfg Config) (stop func()) {
	h.t.Helper()
	cons := h.consumer(js, cfg)
	runCtx, cancelRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sink.Run(runCtx, cons) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancelRun()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				h.t.Errorf("Run did not return 15s after its context was canceled")
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

// consumer creates (or updates) the sink's durable consumer as the app does.
func (h *harness) consumer(js jetstream.JetStream, cfg Config) jetstream.Consumer {
	h.t.Helper()
	ackWait := cfg.AckWait
	if ackWait == 0 {
		ackWait = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamNovu, events.ConsumerConfig(events.DurableSink,
		events.WithAckWait(ackWait), events.WithMaxDeliver(rt.ServerMaxDeliver(cfg.MaxDeliver))))
	if err != nil {
		h.t.Fatalf("create consumer: %v", err)
	}
	return cons
}

// command returns the i-th test command of workflow.
func command(i int, workflow string) events.TriggerCommand {
	svixID := fmt.Sprintf("msg_%04d", i)
	return events.TriggerCommand{
		WorkflowID:    workflow,
		To:            events.Recipient{Subscriber: &events.Subscriber{SubscriberID: fmt.Sprintf("user_%d", i), Email: "u@example.com"}},
		Payload:       json.RawMessage(fmt.Sprintf(`{"n":%d,"id":12345678901234567890,"html":"<b>&"}`, i)),
		TransactionID: events.TransactionID(svixID, workflow),
		SvixID:        svixID,
		EventType:     "user.created",
		ReceivedAt:    time.Now().UnixMilli(),
	}
}

// commands returns the first n test commands of workflow.
func commands(n int, workflow string) []events.TriggerCommand {
	cmds := make([]events.TriggerCommand, n)
	for i := range cmds {
		cmds[i] = command(i, workflow)
	}
	return cmds
}

// publish stores cmds in stream NOVU as the router would.
func (h *harness) publish(cmds ...events.TriggerCommand) {
	h.t.Helper()
	for _, c := range cmds {
		if _, err := h.js.PublishMsgAsync(commandMsg(h.t, c)); err != nil {
			h.t.Fatalf("publish: %v", err)
		}
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		h.t.Fatalf("publish: no PubAck after 10s")
	}
}

func commandMsg(t *testing.T, c events.TriggerCommand) *nats.Msg {
	t.Helper()
	body, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	subj, err := events.NovuTriggerSubject(c.WorkflowID)
	if err != nil {
		t.Fatalf("subject: %v", err)
	}
	msg := nats.NewMsg(subj)
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, c.TransactionID)
	msg.Header.Set(events.SvixIDHeader, c.SvixID)
	msg.Header.Set(events.WorkflowIDHeader, c.WorkflowID)
	msg.Header.Set(events.TransactionIDHeader, c.TransactionID)
	return msg
}

func (h *harness) dlq() []*jetstream.RawStreamMsg {
	h.t.Helper()
	return eventstest.StreamMsgs(h.t, h.js, events.StreamDLQ, events.DLQSubjectsAll)
}

func (h *harness) consumerInfo() *jetstream.ConsumerInfo {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.js.Consumer(ctx, events.StreamNovu, events.DurableSink)
	if err != nil {
		h.t.Fatalf("consumer: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		h.t.Fatalf("consumer info: %v", err)
	}
	return info
}

// allAcked reports whether the consumer acked the first n stream messages.
func (h *harness) allAcked(n uint64) bool {
	info := h.consumerInfo()
	return info.AckFloor.Stream >= n && info.NumAckPending == 0 && info.NumPending == 0
}

// metric sums the values of the samples of name whose labels include labels.
func (h *harness) metric(name string, labels ...string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatalf("gather: %v", err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func (h *harness) eventually(timeout time.Duration, what string, cond func() bool) {
	h.t.Helper()
	eventstest.Eventually(h.t, timeout, what, cond)
}

// header returns a header of a dead letter.
func header(m *jetstream.RawStreamMsg, key string) string { return m.Header.Get(key) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
