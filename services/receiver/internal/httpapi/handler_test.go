package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/receiver/internal/httpapi"
	"github.com/clerknovu/pipeline/services/receiver/internal/verify"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// stack is a receiver handler in front of an embedded JetStream server.
type stack struct {
	srv     *server.Server
	nc      *nats.Conn          // the handler's connection
	inspect jetstream.JetStream // a separate connection to look at the stream
	url     string
	client  *http.Client
	reg     *prometheus.Registry
	logs    *eventstest.SyncBuffer
	spans   *tracetest.SpanRecorder
}

func newStack(t *testing.T, opts ...func(*httpapi.Options)) *stack {
	t.Helper()
	s := &stack{srv: eventstest.RunServer(t), reg: prometheus.NewRegistry(), logs: &eventstest.SyncBuffer{}, spans: tracetest.NewSpanRecorder()}
	logger := service.NewLogger(s.logs, service.LogConfig{Format: "json"})
	nc, err := service.Connect(service.NATSConfig{URL: s.srv.ClientURL()}, t.Name(), logger)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	s.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256), jetstream.WithPublishAsyncTimeout(2*time.Second))
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	_, s.inspect = eventstest.Connect(t, s.srv.ClientURL())
	metrics, err := httpapi.NewMetrics(s.reg)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	v, err := verify.New([]string{testSecret})
	if err != nil {
		t.Fatalf("verifier: %v", err)
	}
	o := httpapi.Options{
		Verifier:       v,
		Publisher:      js,
		Metrics:        metrics,
		Logger:         logger,
		TracerProvider: tp,
		Propagator:     propagation.TraceContext{},
		PublishTimeout: 2 * time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	h, err := httpapi.New(o)
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	s.url, s.client = ts.URL+"/webhooks/clerk", ts.Client()
	return s
}

func (s *stack) post(t *testing.T, d delivery) response {
	t.Helper()
	return do(t, s.client, d.request(t, s.url))
}

func (s *stack) stored(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	return eventstest.StreamMsgs(t, s.inspect, events.StreamClerk, events.ClerkSubjectsAll)
}

func TestSignedWebhookIsStoredUnchanged(t *testing.T) {
	s := newStack(t)
	n := 0
	for typ, body := range fixtures {
		t.Run(typ, func(t *testing.T) {
			d := delivery{id: "msg_" + strings.ReplaceAll(typ, ".", "_"), ts: time.Now(), body: []byte(body)}
			before := time.Now().UnixMilli()
			resp := s.post(t, d)
			after := time.Now().UnixMilli()
			if resp.status != http.StatusOK || resp.body != `{"status":"accepted"}`+"\n" {
				t.Fatalf("answer %d %q, want 200 accepted", resp.status, resp.body)
			}
			n++
			msgs := s.stored(t)
			if len(msgs) != n {
				t.Fatalf("%d messages stored, want %d", len(msgs), n)
			}
			m := msgs[n-1]
			if want := "clerk." + typ; m.Subject != want {
				t.Errorf("subject %q, want %q", m.Subject, want)
			}
			if string(m.Data) != body {
				t.Errorf("stored data differs from the bytes sent:\n got %s\nwant %s", m.Data, body)
			}
			for k, want := range map[string]string{
				jetstream.MsgIDHeader:      d.id,
				events.SvixIDHeader:        d.id,
				events.SvixTimestampHeader: strconv.FormatInt(d.ts.Unix(), 10),
				events.EventTypeHeader:     typ,
			} {
				if got := m.Header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			at, err := strconv.ParseInt(m.Header.Get(events.ReceivedAtHeader), 10, 64)
			if err != nil || at < before || at > after {
				t.Errorf("header %s = %q, want Unix ms in [%d, %d]", events.ReceivedAtHeader, m.Header.Get(events.ReceivedAtHeader), before, after)
			}
		})
	}
	if got := counter(t, s.reg, "accepted"); got != float64(len(fixtures)) {
		t.Errorf("accepted counter %v, want %d", got, len(fixtures))
	}
}

func TestTraceContext(t *testing.T) {
	s := newStack(t)
	const incomingTrace = "0af7651916cd43dd8448eb211c80319c"
	d := delivery{id: "msg_trace", ts: time.Now(), body: []byte(fixtures["user.created"])}
	req := d.request(t, s.url)
	req.Header.Set("traceparent", "00-"+incomingTrace+"-b7ad6b7169203331-01")
	if resp := do(t, s.client, req); resp.status != http.StatusOK {
		t.Fatalf("answer %d %q, want 200", resp.status, resp.body)
	}
	msgs := s.stored(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	tp := msgs[0].Header.Get("traceparent")
	if tp == "" {
		t.Fatalf("no traceparent header on the message; headers %v", msgs[0].Header)
	}
	var producer, receive sdktrace.ReadOnlySpan
	eventstest.Eventually(t, 5*time.Second, "the receive and producer spans", func() bool {
		producer, receive = nil, nil
		for _, sp := range s.spans.Ended() {
			switch sp.SpanKind() {
			case trace.SpanKindProducer:
				producer = sp
			case trace.SpanKindServer:
				receive = sp
			}
		}
		return producer != nil && receive != nil
	})
	if want := fmt.Sprintf("00-%s-%s-01", producer.SpanContext().TraceID(), producer.SpanContext().SpanID()); tp != want {
		t.Errorf("traceparent %q, want the producer span %q", tp, want)
	}
	if producer.Parent().SpanID() != receive.SpanContext().SpanID() {
		t.Errorf("producer span's parent is not the receive span")
	}
	if receive.SpanContext().TraceID().String() == incomingTrace {
		t.Errorf("incoming traceparent became the parent; want a link (public endpoint)")
	}
	linked := false
	for _, l := range receive.Links() {
		linked = linked || l.SpanContext.TraceID().String() == incomingTrace
	}
	if !linked {
		t.Errorf("receive span has no link to the incoming trace %s", incomingTrace)
	}
	attrs := map[string]string{}
	for _, kv := range producer.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs[string(events.SvixIDKey)] != d.id || attrs[string(events.EventTypeKey)] != "user.created" {
		t.Errorf("producer span attributes %v, want %s=%s and %s=user.created", attrs, events.SvixIDKey, d.id, events.EventTypeKey)
	}
}

func TestSvixRetryIsStoredOnce(t *testing.T) {
	s := newStack(t)
	body := []byte(fixtures["organizationMembership.created"])
	first := delivery{id: "msg_retry", ts: time.Now().Add(-30 * time.Second), body: body}
	retry := delivery{id: "msg_retry", ts: time.Now(), body: body} // new timestamp, new signature
	if resp := s.post(t, first); resp.status != http.StatusOK || !strings.Contains(resp.body, "accepted") {
		t.Fatalf("first delivery: %d %q, want 200 accepted", resp.status, resp.body)
	}
	if resp := s.post(t, retry); resp.status != http.StatusOK || !strings.Contains(resp.body, "duplicate") {
		t.Fatalf("retry: %d %q, want 200 duplicate", resp.status, resp.body)
	}
	msgs := s.stored(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	if got, want := msgs[0].Header.Get(events.SvixTimestampHeader), strconv.FormatInt(first.ts.Unix(), 10); got != want {
		t.Errorf("stored Svix-Timestamp %q, want the first delivery's %q", got, want)
	}
	if a, d := counter(t, s.reg, "accepted"), counter(t, s.reg, "duplicate"); a != 1 || d != 1 {
		t.Errorf("accepted=%v duplicate=%v, want 1 and 1", a, d)
	}
}

func TestWebhookHeaderNames(t *testing.T) {
	s := newStack(t)
	d := delivery{id: "msg_standard", ts: time.Now(), body: []byte(fixtures["email.created"]), prefix: "webhook-"}
	if resp := s.post(t, d); resp.status != http.StatusOK {
		t.Fatalf("answer %d %q, want 200", resp.status, resp.body)
	}
	msgs := s.stored(t)
	if len(msgs) != 1 || msgs[0].Header.Get(jetstream.MsgIDHeader) != d.id {
		t.Fatalf("want one message with Nats-Msg-Id %q, got %d", d.id, len(msgs))
	}
}

func TestNATSDownIs503(t *testing.T) {
	s := newStack(t)
	if resp := s.post(t, delivery{id: "msg_up", ts: time.Now(), body: []byte(fixtures["user.created"])}); resp.status != http.StatusOK {
		t.Fatalf("while up: %d %q, want 200", resp.status, resp.body)
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	eventstest.Eventually(t, 5*time.Second, "the client to notice the server is gone", func() bool { return !s.nc.IsConnected() })
	for i := range 3 {
		resp := s.post(t, delivery{id: fmt.Sprintf("msg_down_%d", i), ts: time.Now(), body: []byte(fixtures["user.created"])})
		if resp.status != http.StatusServiceUnavailable {
			t.Fatalf("while down: %d %q, want 503", resp.status, resp.body)
		}
		if resp.header.Get("Retry-After") != "5" {
			t.Errorf("Retry-After %q, want 5", resp.header.Get("Retry-After"))
		}
		if strings.Count(resp.body, "\n") != 1 || len(resp.body) < 5 {
			t.Errorf("reason %q, want one line", resp.body)
		}
	}
	if got := counter(t, s.reg, "unavailable"); got != 3 {
		t.Errorf("unavailable counter %v, want 3", got)
	}
}

func TestMissingStreamIs503(t *testing.T) {
	s := newStack(t)
	if err := s.inspect.DeleteStream(t.Context(), events.StreamClerk); err != nil {
		t.Fatalf("delete stream: %v", err)
	}
	resp := s.post(t, delivery{id: "msg_nostream", ts: time.Now(), body: []byte(fixtures["user.created"])})
	if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") == "" {
		t.Fatalf("answer %d (Retry-After %q) %q, want 503 with Retry-After", resp.status, resp.header.Get("Retry-After"), resp.body)
	}
}

// padded returns a valid envelope of exactly n bytes.
func padded(t *testing.T, n int) []byte {
	t.Helper()
	const head, tail = `{"data":{"pad":"`, `"},"object":"event","type":"user.updated"}`
	if n < len(head)+len(tail) {
		t.Fatalf("padded(%d): too small", n)
	}
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

func TestBodyLimit(t *testing.T) {
	const limit = 2048
	s := newStack(t, func(o *httpapi.Options) { o.MaxBodyBytes = limit })
	tests := []struct {
		name       string
		size       int
		hideLength bool
		want       int
	}{
		{name: "at the limit", size: limit, want: http.StatusOK},
		{name: "one byte over", size: limit + 1, want: http.StatusRequestEntityTooLarge},
		{name: "far over", size: 64 << 10, want: http.StatusRequestEntityTooLarge},
		{name: "over, chunked without Content-Length", size: limit + 100, hideLength: true, want: http.StatusRequestEntityTooLarge},
		{name: "next request still works", size: 500, want: http.StatusOK},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := delivery{id: fmt.Sprintf("msg_size_%d", i), ts: time.Now(), body: padded(t, tt.size)}.request(t, s.url)
			if tt.hideLength {
				req.Body, req.ContentLength = io.NopCloser(io.MultiReader(req.Body)), -1
			}
			resp := do(t, s.client, req)
			if resp.status != tt.want {
				t.Fatalf("answer %d %q, want %d", resp.status, resp.body, tt.want)
			}
			if tt.want == http.StatusRequestEntityTooLarge && !strings.Contains(resp.body, strconv.Itoa(limit)) {
				t.Errorf("reason %q does not say the limit", resp.body)
			}
		})
	}
	if got := len(s.stored(t)); got != 2 {
		t.Errorf("%d messages stored, want 2", got)
	}
	if got := counter(t, s.reg, "too_large"); got != 3 {
		t.Errorf("too_large counter %v, want 3", got)
	}
}

func TestBadSignatureIs401(t *testing.T) {
	s := newStack(t)
	body := []byte(fixtures["user.created"])
	now := time.Now()
	tests := []struct {
		name  string
		build func(t *testing.T) *http.Request
	}{
		{name: "wrong secret", build: func(t *testing.T) *http.Request {
			return delivery{id: "msg_wrong", ts: now, body: body, secret: otherSecret}.request(t, s.url)
		}},
		{name: "no headers", build: func(t *testing.T) *http.Request {
			req := delivery{id: "msg_none", ts: now, body: body}.request(t, s.url)
			req.Header.Del("svix-id")
			req.Header.Del("svix-timestamp")
			req.Header.Del("svix-signature")
			return req
		}},
		{name: "missing signature", build: func(t *testing.T) *http.Request {
			req := delivery{id: "msg_nosig", ts: now, body: body}.request(t, s.url)
			req.Header.Del("svix-signature")
			return req
		}},
		{name: "tampered body", build: func(t *testing.T) *http.Request {
			req := delivery{id: "msg_tamper", ts: now, body: body}.request(t, s.url)
			tampered := strings.Replace(string(body), "Zoë", "Zoe", 1)
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(tampered)), int64(len(tampered))
			return req
		}},
		{name: "six minutes old", build: func(t *testing.T) *http.Request {
			return delivery{id: "msg_old", ts: now.Add(-6 * time.Minute), body: body}.request(t, s.url)
		}},
		{name: "non-numeric timestamp", build: func(t *testing.T) *http.Request {
			req := delivery{id: "msg_ts", ts: now, body: body}.request(t, s.url)
			req.Header.Set("svix-timestamp", "soon")
			return req
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, s.client, tt.build(t))
			if resp.status != http.StatusUnauthorized {
				t.Fatalf("answer %d %q, want 401", resp.status, resp.body)
			}
			if strings.Count(resp.body, "\n") != 1 || strings.Contains(resp.body, strings.TrimPrefix(testSecret, "whsec_")) {
				t.Errorf("reason %q: want one line without the secret", resp.body)
			}
		})
	}
	if got := len(s.stored(t)); got != 0 {
		t.Errorf("%d messages stored, want 0", got)
	}
	if got := counter(t, s.reg, "bad_signature"); got != float64(len(tests)) {
		t.Errorf("bad_signature counter %v, want %d", got, len(tests))
	}
	// One log line per rejection, with the reason, the svix-id and the trace id;
	// never the secret nor the body.
	lines := strings.Split(strings.TrimSpace(s.logs.String()), "\n")
	if len(lines) != len(tests) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(tests), s.logs.String())
	}
	var rec struct {
		Msg, Reason, SvixID, TraceID string
	}
	for _, l := range lines {
		if strings.Contains(l, strings.TrimPrefix(testSecret, "whsec_")) || strings.Contains(l, "zoë") {
			t.Errorf("log line leaks the secret or the payload: %s", l)
		}
	}
	if err := json.Unmarshal([]byte(lines[0]), &struct {
		Msg     *string `json:"msg"`
		Reason  *string `json:"reason"`
		SvixID  *string `json:"svix_id"`
		TraceID *string `json:"trace_id"`
	}{&rec.Msg, &rec.Reason, &rec.SvixID, &rec.TraceID}); err != nil {
		t.Fatalf("log line is not JSON: %v", err)
	}
	if rec.Msg != "webhook rejected" || !strings.Contains(rec.Reason, "no matching signature") || rec.SvixID != "msg_wrong" || rec.TraceID == "" {
		t.Errorf("log line %s: want msg, reason, svix_id and trace_id", lines[0])
	}
}

func TestBadEnvelopeIs400(t *testing.T) {
	s := newStack(t)
	tests := []struct{ name, body string }{
		{"empty", ""},
		{"not JSON", "hello"},
		{"truncated JSON", `{"type":"user.created"`},
		{"array", `[{"type":"user.created"}]`},
		{"missing type", `{"data":{},"object":"event"}`},
		{"null type", `{"type":null}`},
		{"numeric type", `{"type":5}`},
		{"empty type", `{"type":""}`},
		{"wildcard type", `{"type":"user.*"}`},
		{"tail wildcard type", `{"type":"user.>"}`},
		{"type with space", `{"type":"user created"}`},
		{"type with empty token", `{"type":"user..created"}`},
		{"too long type", `{"type":"` + strings.Repeat("a", 201) + `"}`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := s.post(t, delivery{id: fmt.Sprintf("msg_bad_%d", i), ts: time.Now(), body: []byte(tt.body)})
			if resp.status != http.StatusBadRequest {
				t.Fatalf("answer %d %q, want 400", resp.status, resp.body)
			}
			if strings.Count(resp.body, "\n") != 1 {
				t.Errorf("reason %q is not one line", resp.body)
			}
		})
	}
	if got := len(s.stored(t)); got != 0 {
		t.Errorf("%d messages stored, want 0", got)
	}
	if got := counter(t, s.reg, "bad_request"); got != float64(len(tests)) {
		t.Errorf("bad_request counter %v, want %d", got, len(tests))
	}
}

func TestMethodNotAllowed(t *testing.T) {
	s := newStack(t, func(o *httpapi.Options) { o.Logger = slog.New(slog.DiscardHandler) })
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		req, err := http.NewRequestWithContext(t.Context(), method, s.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp := do(t, s.client, req)
		if resp.status != http.StatusMethodNotAllowed || resp.header.Get("Allow") != http.MethodPost {
			t.Errorf("%s: %d (Allow %q), want 405 with Allow: POST", method, resp.status, resp.header.Get("Allow"))
		}
	}
}
