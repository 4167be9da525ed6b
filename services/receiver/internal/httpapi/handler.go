package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/receiver/internal/verify"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of the receiver's producer spans.
const ScopeName = "github.com/clerknovu/pipeline/services/receiver/internal/httpapi"

// Defaults of [Options].
const (
	// DefaultMaxBodyBytes caps a webhook body at 1 MiB.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultPublishTimeout bounds the wait for a PubAck, well inside Svix's 15 s.
	DefaultPublishTimeout = 5 * time.Second
	// DefaultRetryAfter is the Retry-After of a 503.
	DefaultRetryAfter = 5 * time.Second
)

// Publisher publishes a message asynchronously; jetstream.JetStream satisfies it.
type Publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

var _ Publisher = jetstream.JetStream(nil)

// Options configure the handler built by [New].
type Options struct {
	// Verifier checks signatures (required).
	Verifier *verify.Verifier
	// Publisher stores verified webhooks (required).
	Publisher Publisher
	// Metrics are updated per request; nil creates unregistered ones.
	Metrics *Metrics
	// Logger gets one line per rejected request; nil discards.
	Logger *slog.Logger
	// TracerProvider and Propagator trace requests and publishes; nil turns
	// spans off and uses W3C trace context.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// MaxBodyBytes caps the body (default [DefaultMaxBodyBytes]).
	MaxBodyBytes int64
	// PublishTimeout bounds the wait for a PubAck (default [DefaultPublishTimeout]).
	PublishTimeout time.Duration
	// Now is the clock used for the signature tolerance and Received-At
	// (default time.Now).
	Now func() time.Time
}

// New returns the webhook handler, wrapped in otelhttp as a public endpoint:
// an incoming traceparent becomes a link of the "receive" span, not its parent.
func New(o Options) (http.Handler, error) {
	if o.Verifier == nil {
		return nil, errors.New("httpapi: a verifier is required")
	}
	if o.Publisher == nil {
		return nil, errors.New("httpapi: a publisher is required")
	}
	if o.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		o.Metrics = m
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TracerProvider == nil {
		o.TracerProvider = tracenoop.NewTracerProvider()
	}
	if o.Propagator == nil {
		o.Propagator = propagation.TraceContext{}
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &handler{
		Options:    o,
		tracer:     o.TracerProvider.Tracer(ScopeName),
		retryAfter: strconv.Itoa(int((DefaultRetryAfter + time.Second - 1) / time.Second)),
		tooLarge:   fmt.Errorf("%w: more than %d bytes", errTooLarge, o.MaxBodyBytes),
	}
	// With tracing off, otelhttp would only build attributes nobody reads:
	// about a tenth of the receiver's CPU under load (docs/benchmarks.md).
	// The sender's trace context still passes on to the message.
	if _, off := o.TracerProvider.(tracenoop.TracerProvider); off {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(o.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))))
		}), nil
	}
	return otelhttp.NewHandler(h, "receive",
		otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }),
		otelhttp.WithTracerProvider(o.TracerProvider),
		otelhttp.WithPropagators(o.Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
	), nil
}

type handler struct {
	Options
	tracer     trace.Tracer
	retryAfter string
	tooLarge   error
	bufs       sync.Pool // *bytes.Buffer
}

// maxPooledBuffer keeps the occasional huge body's buffer out of the pool.
const maxPooledBuffer = 256 << 10

var (
	bodyAccepted  = []byte(`{"status":"accepted"}` + "\n")
	bodyDuplicate = []byte(`{"status":"duplicate"}` + "\n")
)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		id  string
		ack *jetstream.PubAck
		err error
	)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		err = errMethodNotAllowed
	} else {
		buf, _ := h.bufs.Get().(*bytes.Buffer)
		if buf == nil {
			buf = new(bytes.Buffer)
		}
		buf.Reset()
		var settled bool
		id, ack, settled, err = h.receive(w, r, buf)
		// A publish left unsettled (timeout, client gone) may still be
		// retried by the client library from the buffer: never reuse it then.
		if settled && buf.Cap() <= maxPooledBuffer {
			h.bufs.Put(buf)
		}
	}
	status, out := statusFor(err)
	if err == nil && ack.Duplicate {
		out = outcomeDuplicate
	}
	h.Metrics.webhooks[out].Inc()
	if err == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if out == outcomeDuplicate {
			_, _ = w.Write(bodyDuplicate)
		} else {
			_, _ = w.Write(bodyAccepted)
		}
		if h.Logger.Enabled(r.Context(), slog.LevelDebug) {
			h.Logger.LogAttrs(r.Context(), slog.LevelDebug, "webhook stored",
				slog.String("outcome", out.String()), slog.String("svix_id", id),
				slog.String("stream", ack.Stream), slog.Uint64("seq", ack.Sequence))
		}
		return
	}
	reason := service.OneLine(err)
	attrs := []slog.Attr{slog.Int("status", status), slog.String("outcome", out.String()), slog.String("reason", reason)}
	if id != "" {
		attrs = append(attrs, slog.String("svix_id", truncate(id, 128)))
	}
	h.Logger.LogAttrs(r.Context(), slog.LevelWarn, "webhook rejected", attrs...)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", h.retryAfter)
	}
	http.Error(w, reason, status)
}

// receive reads, verifies, checks and publishes one webhook. It returns the
// svix-id (once known), the PubAck, and whether the publish, if any, has
// settled so that buf is no longer referenced.
func (h *handler) receive(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) (id string, ack *jetstream.PubAck, settled bool, err error) {
	sig := verify.HeadersFrom(r.Header.Get)
	id = sig.ID
	if r.ContentLength > h.MaxBodyBytes {
		return id, nil, true, h.tooLarge
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.MaxBodyBytes)); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return id, nil, true, h.tooLarge
		}
		return id, nil, true, fmt.Errorf("%w: %v", errReadBody, err)
	}
	body := buf.Bytes()
	now := h.Now()
	if err := h.Verifier.Verify(sig, body, now); err != nil {
		return id, nil, true, fmt.Errorf("signature: %w", err)
	}
	ev, err := events.ParseEvent(body)
	if err != nil {
		return id, nil, true, err
	}
	subject, err := events.ClerkSubject(ev.Type)
	if err != nil {
		return id, nil, true, err
	}
	msg := newMsg(subject, body, sig, ev.Type, now)
	ctx, span := events.StartPublish(r.Context(), h.tracer, h.Propagator, msg,
		events.SvixIDKey.String(sig.ID), events.EventTypeKey.String(ev.Type))
	start := time.Now()
	ack, settled, err = h.publish(ctx, msg)
	h.Metrics.publishDuration.Observe(time.Since(start).Seconds())
	events.EndSpan(span, err)
	return id, ack, settled, err
}

// newMsg builds the clerk.<type> message: the verified bytes unchanged, the
// svix-id as Nats-Msg-Id (JetStream dedupes Svix's retries on it), and the
// pipeline's headers. The header values share one backing array.
func newMsg(subject string, body []byte, sig verify.Headers, eventType string, now time.Time) *nats.Msg {
	v := [...]string{sig.ID, sig.ID, sig.Timestamp, eventType, strconv.FormatInt(now.UnixMilli(), 10)}
	vals := v[:] // escapes to the heap once, instead of one slice per header
	h := make(nats.Header, 8)
	h[jetstream.MsgIDHeader] = vals[0:1:1]
	h[events.SvixIDHeader] = vals[1:2:2]
	h[events.SvixTimestampHeader] = vals[2:3:3]
	h[events.EventTypeHeader] = vals[3:4:4]
	h[events.ReceivedAtHeader] = vals[4:5:5]
	return &nats.Msg{Subject: subject, Data: body, Header: h}
}

// publish publishes msg asynchronously and waits for its own PubAck, at most
// PublishTimeout and while ctx lasts. settled is false when it stopped
// waiting before the future resolved.
func (h *handler) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, bool, error) {
	paf, err := h.Publisher.PublishMsgAsync(msg)
	if err != nil {
		return nil, true, publishError(msg.Subject, err)
	}
	timer := time.NewTimer(h.PublishTimeout)
	defer timer.Stop()
	select {
	case ack := <-paf.Ok():
		if ack == nil {
			return nil, true, publishError(msg.Subject, errPublishTimeout)
		}
		return ack, true, nil
	case err := <-paf.Err():
		return nil, true, publishError(msg.Subject, err)
	case <-timer.C:
		return nil, false, fmt.Errorf("publish %s: %w after %s", msg.Subject, errPublishTimeout, h.PublishTimeout)
	case <-ctx.Done():
		return nil, false, fmt.Errorf("publish %s: %w", msg.Subject, context.Cause(ctx))
	}
}

// publishError words a publish failure for the caller and the log. The
// client reports a connection that is down (no reconnect buffer) or not yet
// up as a full buffer or missing header support: say what it means.
func publishError(subject string, err error) error {
	if errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrHeadersNotSupported) {
		return fmt.Errorf("publish %s: %w (%w)", subject, errNotConnected, err)
	}
	return fmt.Errorf("publish %s: %w", subject, err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
