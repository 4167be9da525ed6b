package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/receiver/internal/httpapi"
	"github.com/clerknovu/pipeline/services/receiver/internal/verify"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// fakeMode says how a fakePublisher answers.
type fakeMode uint8

const (
	ackIt        fakeMode = iota // PubAck
	duplicateIt                  // PubAck with Duplicate
	failPublish                  // PublishMsgAsync returns err
	failFuture                   // the future resolves to err
	neverResolve                 // the future never resolves
	numFakeModes
)

// fakePublisher is a Publisher without a server. It records what it was asked
// to publish (copying the data and header, as the real client encodes them).
type fakePublisher struct {
	mode    fakeMode
	err     error
	discard bool // record nothing: a benchmark measures the handler, not the copies

	mu   sync.Mutex
	msgs []*nats.Msg
	seen []*nats.Msg // the messages as given, to tell a reused one
}

var _ httpapi.Publisher = (*fakePublisher)(nil)

func (p *fakePublisher) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if p.mode == failPublish {
		return nil, p.err
	}
	if !p.discard {
		p.record(m)
	}
	f := &future{msg: m, ok: make(chan *jetstream.PubAck, 1), errc: make(chan error, 1)}
	switch p.mode {
	case ackIt:
		f.ok <- &jetstream.PubAck{Stream: "CLERK", Sequence: 1}
	case duplicateIt:
		f.ok <- &jetstream.PubAck{Stream: "CLERK", Sequence: 1, Duplicate: true}
	case failFuture:
		f.errc <- p.err
	}
	return f, nil
}

// record keeps copies of m: the handler reuses it once its future resolved.
func (p *fakePublisher) record(m *nats.Msg) {
	p.mu.Lock()
	p.msgs = append(p.msgs, &nats.Msg{Subject: m.Subject, Header: nats.Header(http.Header(m.Header).Clone()), Data: append([]byte(nil), m.Data...)})
	p.seen = append(p.seen, m)
	p.mu.Unlock()
}

// reused reports how many of the messages given were given before.
func (p *fakePublisher) reused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for i, m := range p.seen {
		if slices.Contains(p.seen[:i], m) {
			n++
		}
	}
	return n
}

func (p *fakePublisher) published() []*nats.Msg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*nats.Msg(nil), p.msgs...)
}

type future struct {
	msg  *nats.Msg
	ok   chan *jetstream.PubAck
	errc chan error
}

func (f *future) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *future) Err() <-chan error            { return f.errc }
func (f *future) Msg() *nats.Msg               { return f.msg }

// fixedNow is the clock of the tests that use a fake publisher.
var fixedNow = time.Unix(1755500000, 0)

func newFakeHandler(t testing.TB, pub httpapi.Publisher, opts ...func(*httpapi.Options)) http.Handler {
	t.Helper()
	v, err := verify.New([]string{testSecret})
	if err != nil {
		t.Fatalf("verifier: %v", err)
	}
	o := httpapi.Options{Verifier: v, Publisher: pub, Now: func() time.Time { return fixedNow }, PublishTimeout: 50 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	h, err := httpapi.New(o)
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	return h
}

// TestPublishOutcomes covers the publish failures that are hard to provoke
// with a real server: each must be 503 with Retry-After (413 for a message
// over the server's max payload), never 2xx.
func TestPublishOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		pub        *fakePublisher
		want       int
		wantStatus string
	}{
		{name: "acked", pub: &fakePublisher{mode: ackIt}, want: http.StatusOK, wantStatus: "accepted"},
		{name: "duplicate", pub: &fakePublisher{mode: duplicateIt}, want: http.StatusOK, wantStatus: "duplicate"},
		{name: "too many pending", pub: &fakePublisher{mode: failPublish, err: jetstream.ErrTooManyStalledMsgs}, want: http.StatusServiceUnavailable},
		{name: "disconnected", pub: &fakePublisher{mode: failPublish, err: nats.ErrReconnectBufExceeded}, want: http.StatusServiceUnavailable},
		{name: "closed", pub: &fakePublisher{mode: failPublish, err: nats.ErrConnectionClosed}, want: http.StatusServiceUnavailable},
		{name: "draining", pub: &fakePublisher{mode: failPublish, err: nats.ErrConnectionDraining}, want: http.StatusServiceUnavailable},
		{name: "max payload", pub: &fakePublisher{mode: failPublish, err: nats.ErrMaxPayload}, want: http.StatusRequestEntityTooLarge},
		{name: "no stream", pub: &fakePublisher{mode: failFuture, err: jetstream.ErrNoStreamResponse}, want: http.StatusServiceUnavailable},
		{name: "ack timeout", pub: &fakePublisher{mode: failFuture, err: jetstream.ErrAsyncPublishTimeout}, want: http.StatusServiceUnavailable},
		{name: "lost on reconnect", pub: &fakePublisher{mode: failFuture, err: nats.ErrDisconnected}, want: http.StatusServiceUnavailable},
		{name: "stream error", pub: &fakePublisher{mode: failFuture, err: errors.New("nats: maximum messages exceeded")}, want: http.StatusServiceUnavailable},
		{name: "no answer within the publish timeout", pub: &fakePublisher{mode: neverResolve}, want: http.StatusServiceUnavailable},
	}
	body := []byte(fixtures["session.revoked"])
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHandler(t, tt.pub)
			req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/clerk", strings.NewReader(string(body)))
			delivery{id: "msg_fake", ts: fixedNow, body: body}.setHeaders(t, req.Header)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("answer %d %q, want %d", rec.Code, rec.Body, tt.want)
			}
			switch {
			case tt.want == http.StatusOK:
				if want := `{"status":"` + tt.wantStatus + `"}`; strings.TrimSpace(rec.Body.String()) != want {
					t.Errorf("body %q, want %s", rec.Body, want)
				}
			case tt.want == http.StatusServiceUnavailable:
				if rec.Header().Get("Retry-After") != "5" {
					t.Errorf("Retry-After %q, want 5", rec.Header().Get("Retry-After"))
				}
				fallthrough
			default:
				if strings.Count(rec.Body.String(), "\n") != 1 {
					t.Errorf("reason %q is not one line", rec.Body)
				}
			}
		})
	}
}

// TestClientGone: a request whose client goes away before the PubAck gets no 2xx.
func TestClientGone(t *testing.T) {
	h := newFakeHandler(t, &fakePublisher{mode: neverResolve}, func(o *httpapi.Options) { o.PublishTimeout = time.Minute })
	body := []byte(fixtures["user.created"])
	ctx, cancel := context.WithCancel(t.Context())
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/webhooks/clerk", strings.NewReader(string(body)))
	delivery{id: "msg_gone", ts: fixedNow, body: body}.setHeaders(t, req.Header)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { defer close(done); h.ServeHTTP(rec, req) }()
	cancel()
	<-done
	if rec.Code/100 == 2 {
		t.Fatalf("answer %d after the client left, want no 2xx", rec.Code)
	}
}

// TestTraceContextPassesThroughWithoutTracing: with tracing off, the
// traceparent sent to the receiver is still the one on the message, so the
// sender's trace reaches Novu.
func TestTraceContextPassesThroughWithoutTracing(t *testing.T) {
	const incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	pub := &fakePublisher{mode: ackIt}
	h := newFakeHandler(t, pub) // no TracerProvider: a no-op one
	body := []byte(fixtures["user.created"])
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/clerk", strings.NewReader(string(body)))
	delivery{id: "msg_passthrough", ts: fixedNow, body: body}.setHeaders(t, req.Header)
	req.Header.Set("traceparent", incoming)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("answer %d %q, want 200", rec.Code, rec.Body)
	}
	msgs := pub.published()
	if len(msgs) != 1 {
		t.Fatalf("%d messages published, want 1", len(msgs))
	}
	if got := msgs[0].Header.Get("traceparent"); got != incoming {
		t.Fatalf("traceparent on the message %q, want the incoming %q", got, incoming)
	}
}

// TestReusedMessagesCarryOnlyTheirOwnHeaders: the handler reuses an acked
// webhook's message for the next one, so each message must carry its own
// ids, type and timestamp, and a trace context only when its own request
// sent one. One goroutine posts in turn, so the pool hands back the same
// message (tracing off: the sender's traceparent is copied; tracing on: a
// span's is injected); the test checks some were reused (the race
// detector's pool drops a quarter of them).
func TestReusedMessagesCarryOnlyTheirOwnHeaders(t *testing.T) {
	const incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, tracing := range []bool{false, true} {
		t.Run(map[bool]string{false: "tracing off", true: "tracing on"}[tracing], func(t *testing.T) {
			pub := &fakePublisher{mode: ackIt}
			h := newFakeHandler(t, pub, func(o *httpapi.Options) {
				if tracing {
					o.TracerProvider = sdktrace.NewTracerProvider()
				}
			})
			type send struct {
				id, fixture string
				traced      bool
			}
			var sends []send
			for round := range 4 {
				r := strconv.Itoa(round)
				sends = append(sends,
					send{"msg_reuse_1_" + r, "user.created", false},
					send{"msg_reuse_2_" + r, "session.revoked", true},
					send{"msg_reuse_3_" + r, "email.created", false},
					send{"msg_reuse_4_" + r, "user.created", false})
			}
			for i, s := range sends {
				ts := fixedNow.Add(-time.Duration(i) * time.Second)
				body := []byte(fixtures[s.fixture])
				req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/clerk", strings.NewReader(string(body)))
				delivery{id: s.id, ts: ts, body: body}.setHeaders(t, req.Header)
				if s.traced {
					req.Header.Set("traceparent", incoming)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Fatalf("%s: answer %d %q, want 200", s.id, rec.Code, rec.Body)
				}
			}
			msgs := pub.published()
			if len(msgs) != len(sends) {
				t.Fatalf("%d messages published, want %d", len(msgs), len(sends))
			}
			if pub.reused() == 0 {
				t.Fatal("no message was reused: the test checks nothing")
			}
			for i, s := range sends {
				m := msgs[i]
				want := map[string]string{
					jetstream.MsgIDHeader:      s.id,
					events.SvixIDHeader:        s.id,
					events.SvixTimestampHeader: strconv.FormatInt(fixedNow.Add(-time.Duration(i)*time.Second).Unix(), 10),
					events.EventTypeHeader:     s.fixture,
					events.ReceivedAtHeader:    strconv.FormatInt(fixedNow.UnixMilli(), 10),
				}
				for k, v := range want {
					if got := m.Header.Values(k); len(got) != 1 || got[0] != v {
						t.Errorf("%s: header %s = %q, want [%q]", s.id, k, got, v)
					}
				}
				if m.Subject != "clerk."+s.fixture || string(m.Data) != fixtures[s.fixture] {
					t.Errorf("%s: subject %q or data not its own", s.id, m.Subject)
				}
				traced := m.Header.Get("traceparent") != ""
				if wantTraced := s.traced || tracing; traced != wantTraced {
					t.Errorf("%s: carries a traceparent: %v, want %v (headers %v)", s.id, traced, wantTraced, m.Header)
				}
				if len(m.Header) != len(want) && !traced {
					t.Errorf("%s: headers %v, want only %d", s.id, m.Header, len(want))
				}
			}
		})
	}
}

// TestFailedPublishIsNotReused: a message whose future resolved with an
// error may still be read by a retry the client library scheduled, so the
// handler must not hand it to the next webhook.
func TestFailedPublishIsNotReused(t *testing.T) {
	pub := &fakePublisher{mode: failFuture, err: nats.ErrNoResponders}
	h := newFakeHandler(t, pub)
	body := []byte(fixtures["user.created"])
	for i := range 8 {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/clerk", strings.NewReader(string(body)))
		delivery{id: "msg_failed_" + strconv.Itoa(i), ts: fixedNow, body: body}.setHeaders(t, req.Header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("answer %d %q, want 503", rec.Code, rec.Body)
		}
	}
	if n := pub.reused(); n != 0 {
		t.Errorf("%d messages reused after a failed publish, want none", n)
	}
}
