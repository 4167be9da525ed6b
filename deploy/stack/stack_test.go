package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/deploy/stack"
	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const novuKey = "novu-test-key"

// startStack runs the whole pipeline against a fake Novu, recording every
// span of the three services in sr.
func startStack(t *testing.T) (*stack.Stack, *novufake.Server, *tracetest.SpanRecorder) {
	t.Helper()
	fake := novufake.NewServer(novuKey)
	t.Cleanup(fake.Close)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tel := service.Telemetry{TracerProvider: tp, Propagator: service.Propagator(), Shutdown: func(context.Context) error { return nil }}

	st, err := stack.Start(t.Context(), stack.Options{
		Dir: t.TempDir(),
		Env: map[string]string{
			"NOVU_API_URL":    fake.URL,
			"NOVU_SECRET_KEY": novuKey,
			"NOVU_DRY_RUN":    "false",
			"NOVU_RATE_LIMIT": "0",
			"NOVU_RETRY_BASE": "10ms",
			"NOVU_RETRY_MAX":  "100ms",
			"NOVU_FETCH_WAIT": "100ms",
		},
		Telemetry: func(context.Context, string) (service.Telemetry, error) { return tel, nil },
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close stack: %v", err)
		}
	})
	return st, fake, sr
}

// post signs body for svixID with the stack's secret and posts it, with extra
// headers, returning the status.
func post(t *testing.T, st *stack.Stack, svixID string, body []byte, extra map[string]string) int {
	t.Helper()
	h, err := samples.Sign(st.Secret, svixID, time.Now(), body)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, st.WebhookURL, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", svixID, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// sent is one sample posted to the stack.
type sent struct {
	sample samples.Sample
	svixID string
	want   outcome
	// retried is posted twice, as Svix retries a delivery it got no 2xx for.
	retried bool
}

func TestFullStack(t *testing.T) {
	st, fake, sr := startStack(t)

	// A caller's own trace context must become a link, not the parent.
	foreign := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0xf0, 0x0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14},
		SpanID:     trace.SpanID{0xab, 1, 2, 3, 4, 5, 6, 7},
		TraceFlags: trace.FlagsSampled,
	})
	foreignHeader := map[string]string{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), foreign), propagation.MapCarrier(foreignHeader))

	var all []sent
	for _, s := range samples.All() {
		e := sent{sample: s, svixID: samples.NewSvixID(), want: expected(t, s)}
		var extra map[string]string
		if s.Name == "user.created" {
			extra = foreignHeader
		}
		if code := post(t, st, e.svixID, s.Body, extra); code/100 != 2 {
			t.Fatalf("post %s: status %d, want 2xx", s.Name, code)
		}
		all = append(all, e)
	}
	// Svix retries a delivery: same svix-id, new timestamp and signature.
	retry := sent{sample: all[0].sample, svixID: samples.NewSvixID(), want: all[0].want, retried: true}
	for range 2 {
		if code := post(t, st, retry.svixID, retry.sample.Body, nil); code/100 != 2 {
			t.Fatalf("post %s: status %d, want 2xx", retry.sample.Name, code)
		}
	}
	all = append(all, retry)
	// A forged event is refused and goes nowhere.
	forged := samples.All()[0]
	if code := postForged(t, st, forged.Body); code != http.StatusUnauthorized && code != http.StatusBadRequest {
		t.Errorf("forged signature: status %d, want 401 or 400", code)
	}

	wantTriggers, wantDLQ := 0, 0
	for _, e := range all {
		switch {
		case e.want.deadLetter:
			wantDLQ++
		case e.want.workflow != "":
			wantTriggers++
		}
	}
	if wantTriggers < 10 || wantDLQ < 1 {
		t.Fatalf("samples give %d triggers and %d dead letters; the test needs a few of each", wantTriggers, wantDLQ)
	}
	nc, js := eventstest.Connect(t, st.NATSURL)
	_ = nc
	eventstest.Eventually(t, 15*time.Second, fmt.Sprintf("%d triggers, %d dead letters and idle consumers", wantTriggers, wantDLQ), func() bool {
		return len(fake.Accepted()) >= wantTriggers &&
			len(eventstest.StreamMsgs(t, js, events.StreamDLQ, events.DLQSubjectsAll)) >= wantDLQ &&
			idle(t, js, events.StreamClerk, events.DurableRouter) && idle(t, js, events.StreamNovu, events.DurableSink)
	})

	t.Run("triggers", func(t *testing.T) {
		byTxn := map[string]novufake.Trigger{}
		for _, tr := range fake.Accepted() {
			byTxn[tr.TransactionID] = tr
		}
		if d := fake.Duplicates(); len(d) > 0 {
			t.Errorf("triggers accepted more than once: %v", d)
		}
		if got := len(fake.Accepted()); got != wantTriggers {
			t.Errorf("%d triggers accepted, want %d", got, wantTriggers)
		}
		for _, e := range all {
			if e.want.workflow == "" || e.want.deadLetter {
				continue
			}
			txn := events.TransactionID(e.svixID, e.want.workflow)
			tr, ok := byTxn[txn]
			if !ok {
				t.Errorf("%s: no trigger of workflow %s (transactionId %s)", e.sample.Name, e.want.workflow, txn)
				continue
			}
			if tr.Name != e.want.workflow {
				t.Errorf("%s: workflow %q, want %q", e.sample.Name, tr.Name, e.want.workflow)
			}
			var to struct {
				SubscriberID string `json:"subscriberId"`
				Email        string `json:"email"`
			}
			if err := json.Unmarshal(tr.To, &to); err != nil {
				t.Errorf("%s: to %s: %v", e.sample.Name, tr.To, err)
				continue
			}
			if to.SubscriberID != e.want.subscriberID {
				t.Errorf("%s: subscriberId %q, want %q", e.sample.Name, to.SubscriberID, e.want.subscriberID)
			}
			if e.want.email != "" && to.Email != e.want.email {
				t.Errorf("%s: email %q, want %q", e.sample.Name, to.Email, e.want.email)
			}
		}
	})

	t.Run("dead letters", func(t *testing.T) {
		dlq := eventstest.StreamMsgs(t, js, events.StreamDLQ, events.DLQSubjectsAll)
		bySvix := map[string]*jetstream.RawStreamMsg{}
		for _, m := range dlq {
			bySvix[m.Header.Get(events.SvixIDHeader)] = m
		}
		if len(dlq) != wantDLQ {
			t.Errorf("%d dead letters, want %d", len(dlq), wantDLQ)
		}
		for _, e := range all {
			if !e.want.deadLetter {
				continue
			}
			m, ok := bySvix[e.svixID]
			if !ok {
				t.Errorf("%s: not dead-lettered", e.sample.Name)
				continue
			}
			if m.Header.Get(events.DLQStageHeader) != events.StageRouter || m.Header.Get(events.DLQReasonHeader) == "" {
				t.Errorf("%s: dead letter stage %q reason %q, want stage router and a reason", e.sample.Name,
					m.Header.Get(events.DLQStageHeader), m.Header.Get(events.DLQReasonHeader))
			}
			if !bytes.Equal(m.Data, e.sample.Body) {
				t.Errorf("%s: dead letter body differs from the webhook body", e.sample.Name)
			}
		}
	})

	t.Run("one trace per event", func(t *testing.T) {
		triggers := map[string]novufake.Trigger{}
		for _, tr := range fake.Accepted() {
			triggers[tr.TransactionID] = tr
		}
		for _, e := range all {
			var wantSpans []spanWant
			switch {
			case e.want.deadLetter:
				wantSpans = routerDeadLetterSpans
			case e.want.workflow != "":
				wantSpans = triggeredSpans
			default:
				wantSpans = skippedSpans
			}
			// Spans end asynchronously to the acks: wait for them.
			var (
				tid  trace.TraceID
				miss string
			)
			poll(5*time.Second, func() bool {
				spans := sr.Ended()
				ok := false
				if tid, ok = traceOf(spans, e.svixID); !ok {
					miss = "the router's consumer span"
					return false
				}
				miss = missing(spans, tid, e.svixID, wantSpans)
				return miss == ""
			})
			if miss != "" {
				t.Errorf("%s: trace %s lacks %s; it holds: %s", e.sample.Name, tid, miss, describe(sr.Ended(), tid))
				continue
			}
			// Each delivery is its own HTTP request, so a retried one has a
			// second, short trace: receiver spans only.
			if ids := traceIDs(sr.Ended(), e.svixID); len(ids) != 1 && !e.retried {
				t.Errorf("%s: spans in %d traces, want 1: %v", e.sample.Name, len(ids), ids)
			}
			if e.want.workflow != "" && !e.want.deadLetter {
				tr := triggers[events.TransactionID(e.svixID, e.want.workflow)]
				if got := traceparentTraceID(tr.Traceparent); got != tid.String() {
					t.Errorf("%s: Novu got traceparent %q, want trace %s", e.sample.Name, tr.Traceparent, tid)
				}
			}
			if e.sample.Name == "user.created" && !e.retried {
				checkPublicEndpoint(t, sr.Ended(), tid, foreign)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		for _, c := range []struct {
			name, url string
			series    []string
		}{
			{"receiver", st.ReceiverURL, []string{"receiver_webhooks_total"}},
			{"router", st.RouterURL, []string{"router_events_total"}},
			{"novu-sink", st.SinkURL, []string{"sink_triggers_total", "pipeline_end_to_end_seconds"}},
		} {
			body, ct := get(t, c.url+"/metrics")
			if !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("%s /metrics: content type %q, want text/plain", c.name, ct)
			}
			for _, s := range c.series {
				if !strings.Contains(body, "\n"+s) {
					t.Errorf("%s /metrics: no %s series", c.name, s)
				}
			}
			if c.name == "novu-sink" && !observed(body, "pipeline_end_to_end_seconds_count") {
				t.Errorf("novu-sink /metrics: pipeline_end_to_end_seconds observed nothing")
			}
		}
	})
}

// postForged posts body with a signature made with another secret.
func postForged(t *testing.T, st *stack.Stack, body []byte) int {
	t.Helper()
	other, err := stack.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	saved := st.Secret
	defer func() { st.Secret = saved }()
	st.Secret = other
	return post(t, st, samples.NewSvixID(), body, nil)
}

// idle reports a durable consumer with nothing pending or unacknowledged.
func idle(t *testing.T, js jetstream.JetStream, stream, durable string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		return false
	}
	info, err := c.Info(ctx)
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

func get(t *testing.T, url string) (body, contentType string) {
	t.Helper()
	code, body, header := eventstest.Get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, code, body)
	}
	return body, header.Get("Content-Type")
}

// poll calls cond every 10 ms until it holds or timeout passes, and reports
// whether it held; the caller says what was missing.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// observed reports a sample of series (e.g. a histogram's _count) above zero.
func observed(metrics, series string) bool {
	for _, line := range strings.Split(metrics, "\n") {
		if rest, ok := strings.CutPrefix(line, series); ok && (rest == "" || rest[0] == ' ' || rest[0] == '{') {
			if f := strings.Fields(rest); len(f) > 0 && f[len(f)-1] != "0" {
				return true
			}
		}
	}
	return false
}
