package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
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
	// DefaultMaxBodyBytes caps a webhook body at 1 MiB less
	// [PayloadHeadroom], so that a webhook at the cap, its headers and its
	// later dead letter fit under NATS's default max_payload of 1 MiB.
	DefaultMaxBodyBytes = 1<<20 - PayloadHeadroom
	// PayloadHeadroom is what the body cap must leave under the server's
	// max_payload for the message headers and the dead-letter headers.
	PayloadHeadroom = 16 << 10
	// DefaultPublishTimeout bounds the wait for a PubAck, well inside Svix's 15 s.
	DefaultPublishTimeout = 5 * time.Second
	// DefaultRetryAfter is the Retry-After of a 503.
	DefaultRetryAfter = 5 * time.Second
	// DefaultMaxInFlight bounds the webhooks being read, verified or
	// published at once. Each holds at most MaxBodyBytes of body, so the
	// default bounds the bodies in memory to 128 MiB at the default 1 MiB
	// cap, whatever the clients declare or send; an honest sender
	// (Svix, the bench at c=64) stays well under it.
	DefaultMaxInFlight = 128
)

// Bounds of the hostile-input handling, not settings: nobody needs to tune them.
const (
	// inFlightWait is how long a webhook waits for an in-flight slot before
	// it gets 503: a short burst above MaxInFlight is absorbed, a flood is
	// refused while it holds nothing but its connection.
	inFlightWait = 200 * time.Millisecond
	// initialBodyBuffer bounds what is reserved from a declared
	// Content-Length before any byte arrived; the buffer grows as bytes do.
	initialBodyBuffer = 16 << 10
	// drainBytes and drainTimeout bound what is read and thrown away after a
	// 413, so that the client finishes writing and reads the answer instead
	// of a connection reset (which Svix would retry for a day).
	drainBytes   = 4 << 20
	drainTimeout = 2 * time.Second
)

// Publisher publishes a message asynchronously; jetstream.JetStream satisfies it.
// The handler reuses a message, its data and its header for a later webhook
// once the message's PubAck arrived, so a Publisher must not read them after
// that (jetstream encodes them into its write buffer while publishing, and
// retries only until the PubAck).
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
	// MaxInFlight bounds the webhooks being read, verified or published at
	// once (default [DefaultMaxInFlight]); beyond it, after a short wait,
	// requests get 503.
	MaxInFlight int
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
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	_, off := o.TracerProvider.(tracenoop.TracerProvider)
	h := &handler{
		Options:    o,
		carried:    carriedHeaders(o.Propagator),
		tracer:     o.TracerProvider.Tracer(ScopeName),
		tracing:    !off,
		retryAfter: strconv.Itoa(int((DefaultRetryAfter + time.Second - 1) / time.Second)),
		tooLarge:   fmt.Errorf("%w: more than %d bytes", errTooLarge, o.MaxBodyBytes),
		slots:      make(chan struct{}, o.MaxInFlight),
	}
	// With tracing off, otelhttp would only build attributes nobody reads:
	// about a tenth of the receiver's CPU under load (docs/benchmarks.md).
	// The sender's trace context still passes on to the message.
	if off {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// WithContext copies the request: only when there is a context to carry.
			if h.carries(r.Header) {
				if ctx := o.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)); ctx != r.Context() {
					r = r.WithContext(ctx)
				}
			}
			h.ServeHTTP(w, r)
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
	tracing    bool     // false with a no-op TracerProvider: no spans to start
	carried    []string // canonical names of the headers the Propagator reads
	retryAfter string
	tooLarge   error
	webhooks   sync.Pool     // *webhook
	timers     sync.Pool     // *time.Timer, stopped
	slots      chan struct{} // one per webhook in flight
}

// carriedHeaders returns the canonical header names p reads (traceparent,
// tracestate, baggage), as the server stores them in a request's header.
func carriedHeaders(p propagation.TextMapPropagator) []string {
	var names []string
	for _, f := range p.Fields() {
		names = append(names, textproto.CanonicalMIMEHeaderKey(f))
	}
	return names
}

// carries reports whether h holds any header the Propagator reads: most
// webhooks carry no trace context, and extracting or injecting nothing
// still costs header look-ups, an allocation per name and context walks.
func (h *handler) carries(hdr http.Header) bool {
	for _, name := range h.carried {
		if len(hdr[name]) > 0 {
			return true
		}
	}
	return false
}

// webhook is the pooled state of one webhook in flight: its body, and the
// message that carries the body, with its header map and values. It goes
// back to the pool only when nothing else can reference it any more (see
// [handler.publish]); the map is kept, cleared and refilled for each
// webhook, its five values slices of vals.
type webhook struct {
	body bytes.Buffer
	msg  nats.Msg
	vals [numVals]string
}

// Indexes of [webhook.vals], one per header of the message.
const (
	valMsgID = iota
	valSvixID
	valSvixTimestamp
	valEventType
	valReceivedAt
	numVals
)

// maxPooledBuffer keeps the occasional huge body's buffer out of the pool.
const maxPooledBuffer = 256 << 10

var (
	contentTypeJSON = []string{"application/json"}[:1:1] // an append copies
	bodyAccepted    = []byte(`{"status":"accepted"}` + "\n")
	bodyDuplicate   = []byte(`{"status":"duplicate"}` + "\n")
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
		id, ack, err = h.receive(r.Context(), w, r)
	}
	status, out := statusFor(err)
	if err == nil && ack.Duplicate {
		out = outcomeDuplicate
	}
	h.Metrics.webhooks[out].Inc()
	if err == nil {
		// A shared value saves an allocation a webhook; the server only reads it.
		w.Header()["Content-Type"] = contentTypeJSON
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
		attrs = append(attrs, slog.String("svix_id", truncateID(id)))
	}
	h.Logger.LogAttrs(r.Context(), slog.LevelWarn, "webhook rejected", attrs...)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", h.retryAfter)
	}
	if status == http.StatusRequestEntityTooLarge {
		refuseBody(w, r, reason)
		return
	}
	http.Error(w, reason, status)
}

// refuseBody answers 413 and closes the connection, after reading and
// throwing away up to drainBytes of the body for at most drainTimeout: a
// client still writing a large body when the server closes gets a
// connection reset instead of the answer (Go's net/http client does, on
// most tries), and Svix retries a reset for a day. The answer goes first,
// so a client that reads it early stops writing.
func refuseBody(w http.ResponseWriter, r *http.Request, reason string) {
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // read the body after answering; unsupported only off HTTP/1
	w.Header().Set("Connection", "close")
	http.Error(w, reason, http.StatusRequestEntityTooLarge)
	_ = rc.Flush()
	_ = rc.SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.CopyN(io.Discard, r.Body, drainBytes)
}

// receive checks, reads, verifies and publishes one webhook, in that order:
// everything the headers can refuse is refused before a byte of the body is
// read, and the body is read only within an in-flight slot. It returns the
// svix-id (once known) and the PubAck.
func (h *handler) receive(ctx context.Context, w http.ResponseWriter, r *http.Request) (id string, ack *jetstream.PubAck, err error) {
	sig := verify.HeadersFrom(r.Header.Get)
	id = sig.ID
	now := h.Now()
	ts, err := verify.Check(sig, now)
	if err != nil {
		return id, nil, fmt.Errorf("signature: %w", err)
	}
	if r.ContentLength > h.MaxBodyBytes {
		return id, nil, h.tooLarge
	}
	if err := h.acquire(ctx); err != nil {
		return id, nil, err
	}
	h.Metrics.inFlight.Inc()
	defer func() {
		h.Metrics.inFlight.Dec()
		<-h.slots
	}()

	wh, _ := h.webhooks.Get().(*webhook)
	if wh == nil {
		wh = new(webhook)
	}
	wh.body.Reset()
	ack, reusable, err := h.store(ctx, w, r, wh, sig, ts, now)
	// A publish that did not end in its PubAck (a timeout, the client
	// gone, an error) may still be retried by the client library from the
	// message: never reuse it then.
	if reusable && wh.body.Cap() <= maxPooledBuffer {
		h.webhooks.Put(wh)
	}
	return id, ack, err
}

// acquire takes an in-flight slot, waiting at most inFlightWait.
func (h *handler) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(inFlightWait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: %d webhooks in flight", errBusy, cap(h.slots))
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errReadBody, errClientGone)
	}
}

// store reads the body into wh, verifies its signature, checks its type and
// publishes it. reusable reports whether wh is no longer referenced.
func (h *handler) store(ctx context.Context, w http.ResponseWriter, r *http.Request, wh *webhook, sig verify.Headers, ts, now time.Time) (ack *jetstream.PubAck, reusable bool, err error) {
	buf := &wh.body
	// Reserve from the declared length only up to a small bound: the
	// buffer grows as bytes actually arrive, up to the cap.
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, initialBodyBuffer)) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.MaxBodyBytes)); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, true, h.tooLarge
		}
		return nil, true, readError(err)
	}
	body := buf.Bytes()
	if err := h.Verifier.VerifyChecked(sig, ts, body); err != nil {
		return nil, true, fmt.Errorf("signature: %w", err)
	}
	eventType, err := events.EventType(body)
	if err != nil {
		return nil, true, err
	}
	subject, err := events.ClerkSubject(eventType)
	if err != nil {
		return nil, true, err
	}
	msg := wh.message(subject, body, sig, eventType, now)
	var span trace.Span
	if h.tracing {
		ctx, span = events.StartPublish(ctx, h.tracer, h.Propagator, msg,
			events.SvixIDKey.String(sig.ID), events.EventTypeKey.String(eventType))
	} else if h.carries(r.Header) {
		// No span to start (the options and attributes of one cost eight
		// allocations a webhook): the sender's trace context still goes on
		// to the message.
		h.Propagator.Inject(ctx, events.HeaderCarrier(msg.Header))
	}
	start := time.Now()
	ack, reusable, err = h.publish(ctx, msg)
	h.Metrics.publishDuration.Observe(time.Since(start).Seconds())
	if span != nil {
		events.EndSpan(span, err)
	}
	return ack, reusable, err
}

// readError words a failure to read the body without the socket addresses
// that net errors carry.
func readError(err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: timed out", errReadBody)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: shorter than its Content-Length", errReadBody)
	default:
		return fmt.Errorf("%w: %w", errReadBody, errClientGone)
	}
}

// message builds the clerk.<type> message in wh: the verified bytes
// unchanged, the svix-id as Nats-Msg-Id (JetStream dedupes Svix's retries on
// it), and the pipeline's headers. The header map is made on first use, then
// cleared (of a trace context too) and refilled: no allocation.
func (wh *webhook) message(subject string, body []byte, sig verify.Headers, eventType string, now time.Time) *nats.Msg {
	wh.vals = [numVals]string{
		valMsgID:         sig.ID,
		valSvixID:        sig.ID,
		valSvixTimestamp: sig.Timestamp,
		valEventType:     eventType,
		valReceivedAt:    strconv.FormatInt(now.UnixMilli(), 10),
	}
	h := wh.msg.Header
	if h == nil {
		h = make(nats.Header, numVals+3) // room for traceparent, tracestate, baggage
		wh.msg.Header = h
	} else {
		clear(h)
	}
	v := wh.vals[:]
	h[jetstream.MsgIDHeader] = v[valMsgID : valMsgID+1 : valMsgID+1]
	h[events.SvixIDHeader] = v[valSvixID : valSvixID+1 : valSvixID+1]
	h[events.SvixTimestampHeader] = v[valSvixTimestamp : valSvixTimestamp+1 : valSvixTimestamp+1]
	h[events.EventTypeHeader] = v[valEventType : valEventType+1 : valEventType+1]
	h[events.ReceivedAtHeader] = v[valReceivedAt : valReceivedAt+1 : valReceivedAt+1]
	wh.msg.Subject, wh.msg.Data = subject, body
	return &wh.msg
}

// publish publishes msg asynchronously and waits for its own PubAck, at most
// PublishTimeout and while ctx lasts. reusable reports whether the client
// library can no longer read msg: after its PubAck, or when
// PublishMsgAsync refused it. Not after an error the future resolved with,
// nor after the wait ended first: jetstream may have scheduled a retry of
// msg (on a no-responders answer) that reads it after the future resolved.
func (h *handler) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, bool, error) {
	paf, err := h.Publisher.PublishMsgAsync(msg)
	if err != nil {
		return nil, true, publishError(msg.Subject, err)
	}
	// A stopped timer is reused: since Go 1.23 neither Stop nor Reset
	// leaves a stale tick in its channel.
	timer, _ := h.timers.Get().(*time.Timer)
	if timer == nil {
		timer = time.NewTimer(h.PublishTimeout)
	} else {
		timer.Reset(h.PublishTimeout)
	}
	defer func() {
		timer.Stop()
		h.timers.Put(timer)
	}()
	select {
	case ack := <-paf.Ok():
		if ack == nil {
			return nil, false, publishError(msg.Subject, errPublishTimeout)
		}
		return ack, true, nil
	case err := <-paf.Err():
		return nil, false, publishError(msg.Subject, err)
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

// truncateID shortens a (possibly hostile) svix-id for a log line, without
// splitting a UTF-8 sequence.
func truncateID(id string) string {
	const n = 128
	if len(id) <= n {
		return id
	}
	return events.TruncateUTF8(id, n) + "..."
}
