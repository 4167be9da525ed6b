package novu

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/outcome"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

type captured struct {
	method, path string
	header       http.Header
	body         []byte
}

// recorder answers with answer and keeps the requests.
func recorder(t *testing.T, answer func(w http.ResponseWriter)) (*httptest.Server, func() []captured) {
	t.Helper()
	var mu sync.Mutex
	var reqs []captured
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, captured{r.Method, r.URL.Path, r.Header.Clone(), b})
		mu.Unlock()
		answer(w)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []captured {
		mu.Lock()
		defer mu.Unlock()
		return append([]captured(nil), reqs...)
	}
}

func testCommand() *events.TriggerCommand {
	return &events.TriggerCommand{
		WorkflowID:    "welcome",
		To:            events.Recipient{Subscriber: &events.Subscriber{SubscriberID: "user_1"}},
		Payload:       json.RawMessage(`{"a": 1}`),
		TransactionID: "txn_1",
	}
}

func newClient(t *testing.T, url string, timeout time.Duration, hc *http.Client) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: url, SecretKey: "sk_secret", Timeout: timeout, HTTPClient: hc})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestTriggerSendsWellFormedRequest(t *testing.T) {
	srv, reqs := recorder(t, func(w http.ResponseWriter) {
		w.Header().Set("RateLimit-Remaining", "0")
		w.Header().Set("RateLimit-Reset", "2")
		w.Header().Set("Idempotency-Replay", "true")
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"data":{"acknowledged":true,"status":"processed","transactionId":"txn_1"}}`)
	})
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	c := newClient(t, srv.URL+"/", time.Second, NewHTTPClient(4, tp, service.Propagator()))

	ctx, parent := tp.Tracer("test").Start(t.Context(), "process")
	a := c.Trigger(ctx, testCommand(), "txn_1")
	parent.End()

	if a.Err != outcome.NoTransportError || a.StatusCode != 201 {
		t.Fatalf("answer = %+v, want 201", a)
	}
	want := outcome.Header{RetryAfter: "3", RateLimitRemaining: "0", RateLimitReset: "2", IdempotencyReplay: "true"}
	if a.Header != want {
		t.Errorf("answer header = %+v, want %+v", a.Header, want)
	}
	if r := outcome.Classify(a, time.Now()); r.Action != outcome.Deliver {
		t.Errorf("classified %v, want deliver", r.Action)
	}
	got := reqs()
	if len(got) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(got))
	}
	r := got[0]
	if r.method != http.MethodPost || r.path != TriggerPath {
		t.Errorf("request %s %s, want POST %s", r.method, r.path, TriggerPath)
	}
	for k, v := range map[string]string{
		"Authorization":   "ApiKey sk_secret",
		"Content-Type":    "application/json",
		"Accept":          "application/json",
		"Idempotency-Key": "txn_1",
	} {
		if r.header.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, r.header.Get(k), v)
		}
	}
	if want := `{"name":"welcome","to":{"subscriberId":"user_1"},"payload":{"a": 1},"transactionId":"txn_1"}`; string(r.body) != want {
		t.Errorf("body = %s, want %s", r.body, want)
	}
	tp2 := r.header.Get("Traceparent")
	if !strings.HasPrefix(tp2, "00-"+parent.SpanContext().TraceID().String()+"-") {
		t.Errorf("traceparent = %q, want the trace %s", tp2, parent.SpanContext().TraceID())
	}
	var client trace.SpanContext
	for _, s := range sr.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			client = s.SpanContext()
			attrs := map[attribute.Key]string{}
			for _, kv := range s.Attributes() {
				attrs[kv.Key] = kv.Value.Emit()
			}
			if attrs[events.WorkflowIDKey] != "welcome" || attrs[events.TransactionIDKey] != "txn_1" {
				t.Errorf("client span attributes = %v, want the workflow id and transactionId", attrs)
			}
			if s.Parent().SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("client span parent = %s, want the process span %s", s.Parent().SpanID(), parent.SpanContext().SpanID())
			}
		}
	}
	if !client.IsValid() || !strings.Contains(tp2, client.SpanID().String()) {
		t.Errorf("traceparent %q does not carry the HTTP client span %v", tp2, client.SpanID())
	}
}

func TestTriggerBulkPath(t *testing.T) {
	srv, reqs := recorder(t, func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"data":[{"status":"processed"},{"status":"processed"}]}`)
	})
	c := newClient(t, srv.URL, time.Second, nil)
	a := c.TriggerBulk(t.Context(), []*events.TriggerCommand{testCommand(), testCommand()}, "bulk_1")
	if a.StatusCode != 201 {
		t.Fatalf("answer = %+v, want 201", a)
	}
	r := reqs()[0]
	if r.path != BulkTriggerPath || r.header.Get("Idempotency-Key") != "bulk_1" || !strings.HasPrefix(string(r.body), `{"events":[{"name":"welcome"`) {
		t.Errorf("bulk request %s key %q body %s", r.path, r.header.Get("Idempotency-Key"), r.body)
	}
}

func TestTriggerTransportFailures(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client leaving
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/v1/events/trigger", http.StatusMovedPermanently)
	}))
	t.Cleanup(redirect.Close)

	tests := []struct {
		name     string
		url      string
		ctx      func() context.Context
		wantErr  outcome.TransportError
		wantCode int
	}{
		{name: "timeout", url: slow.URL, wantErr: outcome.Timeout},
		{name: "connection refused", url: closedURL, wantErr: outcome.Connection},
		{name: "canceled", url: slow.URL, wantErr: outcome.Canceled, ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
		{name: "redirect is not followed", url: redirect.URL, wantCode: http.StatusMovedPermanently},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.url, 100*time.Millisecond, NewHTTPClient(1, nil, nil))
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			a := c.Trigger(ctx, testCommand(), "k")
			if a.Err != tt.wantErr || a.StatusCode != tt.wantCode {
				t.Fatalf("answer = %+v, want err %v code %d", a, tt.wantErr, tt.wantCode)
			}
			if a.Err != outcome.NoTransportError && (a.ErrDetail == "" || strings.Contains(a.ErrDetail, "sk_secret")) {
				t.Errorf("ErrDetail = %q, want a description without the key", a.ErrDetail)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []Config{
		{BaseURL: "api.novu.co", SecretKey: "k", Timeout: time.Second},
		{BaseURL: "ftp://api.novu.co", SecretKey: "k", Timeout: time.Second},
		{BaseURL: "https://api.novu.co", Timeout: time.Second},
		{BaseURL: "https://api.novu.co", SecretKey: "k"},
	}
	for _, cfg := range tests {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}
