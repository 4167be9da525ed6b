package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const secret = "sk_test_app_SECRET_VALUE"

type running struct {
	base string // http://<ops address>
	logs *eventstest.SyncBuffer
	stop func() error
}

// start runs the app with env (plus NATS_URL and fast test timings) until stop.
func start(t *testing.T, natsURL string, vars map[string]string, tel service.Telemetry) *running {
	t.Helper()
	all := map[string]string{
		"NATS_URL": natsURL, "NOVU_FETCH_WAIT": "100ms", "NOVU_RETRY_BASE": "20ms", "NOVU_RETRY_MAX": "200ms",
		"NOVU_BREAKER_OPEN": "300ms", "NOVU_RATE_LIMIT": "0", "NOVU_TIMEOUT": "2s",
	}
	for k, v := range vars {
		all[k] = v
	}
	cfg, err := LoadConfig(env(all))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &eventstest.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Deps{Deps: service.Deps{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Telemetry: tel, Listener: ln}})
	}()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(15 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	r := &running{base: "http://" + ln.Addr().String(), logs: logs, stop: stop}
	eventstest.Eventually(t, 10*time.Second, "the sink ready", func() bool {
		code, _ := r.get(t, "/readyz")
		return code == http.StatusOK
	})
	return r
}

func (r *running) get(t *testing.T, path string) (int, string) {
	t.Helper()
	code, body, _ := eventstest.Get(t, r.base+path)
	return code, body
}

// A command becomes exactly one well-formed request: auth, name, to, payload
// bytes unchanged, transactionId, Idempotency-Key and the trace context.
func TestRunSendsOneWellFormedRequest(t *testing.T) {
	s := eventstest.RunServer(t)
	nc, js := eventstest.Connect(t, s.ClientURL())
	fake := novufake.NewServer(secret)
	defer fake.Close()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	tel := service.Telemetry{TracerProvider: tp, Propagator: service.Propagator(), Shutdown: tp.Shutdown}

	r := start(t, s.ClientURL(), map[string]string{"NOVU_API_URL": fake.URL, "NOVU_SECRET_KEY": secret}, tel)

	// The command as the router stores it; the payload keeps odd spacing,
	// HTML characters and a number beyond 2^53, which must reach Novu as is.
	payload := `{"id": "user_1",  "html":"<b>&</b>", "big": 123456789012345678901234567890}`
	txID := events.TransactionID("msg_1", "welcome")
	body := `{"workflowId":"welcome","to":{"subscriber":{"subscriberId":"user_1","email":"ada@example.com","firstName":"Ada","data":{"plan":"pro"}}},` +
		`"payload":` + payload + `,"transactionId":"` + txID + `","svixId":"msg_1","eventType":"user.created","receivedAt":` +
		jsonInt(time.Now().UnixMilli()) + `}`
	msg := nats.NewMsg("novu.trigger.welcome")
	msg.Data = []byte(body)
	msg.Header.Set(jetstream.MsgIDHeader, txID)
	producerCtx, producer := tp.Tracer("test").Start(t.Context(), "router publish", trace.WithSpanKind(trace.SpanKindProducer))
	events.Inject(producerCtx, msg, events.WithPropagator(service.Propagator()))
	producer.End()
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatalf("publish: %v", err)
	}

	eventstest.Eventually(t, 10*time.Second, "Novu to get the trigger", func() bool { return fake.AcceptedCount() == 1 })
	got := fake.Triggers()
	if len(got) != 1 {
		t.Fatalf("Novu saw %d triggers, want exactly 1", len(got))
	}
	tr := got[0]
	if tr.StatusCode != 201 { // the fake checks Authorization: ApiKey <key>
		t.Errorf("answered %d, want 201 (authorized)", tr.StatusCode)
	}
	if tr.Name != "welcome" || tr.TransactionID != txID || tr.IdempotencyKey != txID {
		t.Errorf("name %q transactionId %q Idempotency-Key %q, want welcome and %s", tr.Name, tr.TransactionID, tr.IdempotencyKey, txID)
	}
	if string(tr.Payload) != payload {
		t.Errorf("payload =\n%s\nwant the command's bytes\n%s", tr.Payload, payload)
	}
	if want := `{"subscriberId":"user_1","firstName":"Ada","email":"ada@example.com","data":{"plan":"pro"}}`; string(tr.To) != want {
		t.Errorf("to = %s, want %s", tr.To, want)
	}
	if tr.ContentType != "application/json" || tr.Accept != "application/json" {
		t.Errorf("Content-Type %q Accept %q, want application/json", tr.ContentType, tr.Accept)
	}
	traceID := producer.SpanContext().TraceID().String()
	if !strings.HasPrefix(tr.Traceparent, "00-"+traceID+"-") {
		t.Errorf("traceparent = %q, want the producer's trace %s", tr.Traceparent, traceID)
	}

	eventstest.Eventually(t, 5*time.Second, "the message acked", func() bool {
		c, err := js.Consumer(t.Context(), events.StreamNovu, events.DurableSink)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.AckFloor.Stream == 1 && info.NumAckPending == 0
	})
	code, ready := r.get(t, "/readyz")
	if code != 200 || !strings.Contains(ready, "breaker closed") {
		t.Errorf("/readyz = %d %s, want 200 with the breaker closed", code, ready)
	}
	_, metrics := r.get(t, "/metrics")
	for _, want := range []string{
		`sink_triggers_total{outcome="delivered",status="201"} 1`,
		`pipeline_end_to_end_seconds_count 1`,
		`sink_novu_request_duration_seconds_count{endpoint="trigger"} 1`,
		`sink_breaker_state 0`,
		`pipeline_consumer_pending_messages{consumer="novu-sink",stream="NOVU"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := r.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}

	if err := r.stop(); err != nil {
		t.Errorf("Run = %v, want nil after a clean shutdown", err)
	}
	if nc.IsClosed() {
		t.Errorf("the app closed the test's connection")
	}
	assertSpans(t, sr, producer.SpanContext())
	if strings.Contains(r.logs.String(), secret) {
		t.Errorf("the logs show the secret key")
	}
}

// assertSpans checks that the message's process span continues the
// producer's trace and parents the HTTP client span, with the pipeline's attributes.
func assertSpans(t *testing.T, sr *tracetest.SpanRecorder, producer trace.SpanContext) {
	t.Helper()
	var process, client sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindConsumer:
			process = s
		case trace.SpanKindClient:
			client = s
		}
	}
	if process == nil || client == nil {
		t.Fatalf("want a consumer span and an HTTP client span, got %d spans", len(sr.Ended()))
	}
	if process.Parent().SpanID() != producer.SpanID() || process.SpanContext().TraceID() != producer.TraceID() {
		t.Errorf("process span parent = %v, want the producer span %v", process.Parent(), producer)
	}
	if client.Parent().SpanID() != process.SpanContext().SpanID() {
		t.Errorf("HTTP client span parent = %v, want the process span", client.Parent().SpanID())
	}
	attrs := map[string]string{}
	for _, kv := range process.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	for _, k := range []string{string(events.WorkflowIDKey), string(events.TransactionIDKey), string(events.SvixIDKey)} {
		if attrs[k] == "" {
			t.Errorf("process span lacks %s: %v", k, attrs)
		}
	}
}

func TestRunDryRunSendsNothing(t *testing.T) {
	s := eventstest.RunServer(t)
	_, js := eventstest.Connect(t, s.ClientURL())
	fake := novufake.NewServer(secret)
	defer fake.Close()
	r := start(t, s.ClientURL(), map[string]string{"NOVU_API_URL": fake.URL, "NOVU_DRY_RUN": "true"}, service.Telemetry{})

	for i, wf := range []string{"welcome", "goodbye"} {
		cmd := events.TriggerCommand{
			WorkflowID: wf, To: events.Recipient{Topic: &events.Topic{TopicKey: "admins"}},
			Payload: json.RawMessage(`{}`), TransactionID: events.TransactionID("msg_"+jsonInt(int64(i)), wf),
		}
		b, _ := json.Marshal(cmd)
		if _, err := js.Publish(t.Context(), "novu.trigger."+wf, b); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	eventstest.Eventually(t, 10*time.Second, "both acked", func() bool {
		c, err := js.Consumer(t.Context(), events.StreamNovu, events.DurableSink)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.AckFloor.Stream == 2 && info.NumAckPending == 0
	})
	if fake.Calls() != 0 {
		t.Errorf("Novu saw %d calls in a dry run, want 0", fake.Calls())
	}
	logs := r.logs.String()
	if strings.Count(logs, "dry run: would trigger") != 2 || !strings.Contains(logs, `"topic_key":"admins"`) || !strings.Contains(logs, `"workflow":"goodbye"`) {
		t.Errorf("logs lack the two dry-run lines with workflow and topic:\n%s", logs)
	}
	if err := r.stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	err := Run(t.Context(), Config{Addr: ":0"}, Deps{})
	if err == nil || !strings.Contains(err.Error(), "NOVU_SECRET_KEY") {
		t.Errorf("Run with an empty config = %v, want a config error naming NOVU_SECRET_KEY", err)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
