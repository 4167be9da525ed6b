package novu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/service"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/outcome"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Paths of the Novu endpoints the sink calls.
const (
	TriggerPath     = "/v1/events/trigger"
	BulkTriggerPath = "/v1/events/trigger/bulk"
)

// Header names the client sends or reads.
const (
	IdempotencyKeyHeader     = "Idempotency-Key"
	IdempotencyReplayHeader  = "Idempotency-Replay"
	RetryAfterHeader         = "Retry-After"
	RateLimitRemainingHeader = "RateLimit-Remaining"
	RateLimitResetHeader     = "RateLimit-Reset"
)

// maxResponseBytes bounds how much of an answer is read: a bulk answer of 100
// items is about 25 KB.
const maxResponseBytes = 1 << 20

// userAgent identifies the sink to Novu.
const userAgent = "clerknovu-pipeline-novu-sink/1"

// ErrConfig reports an unusable client configuration.
var ErrConfig = errors.New("novu client config")

// Config configures a [Client].
type Config struct {
	// BaseURL is Novu's API root, e.g. https://api.novu.co or https://eu.api.novu.co.
	BaseURL string
	// SecretKey is the environment's secret key, sent as "Authorization: ApiKey <key>".
	SecretKey string
	// Timeout bounds each request, answer body included.
	Timeout time.Duration
	// HTTPClient sends the requests; see [NewHTTPClient].
	HTTPClient *http.Client
}

// Client calls Novu's trigger endpoints. It is safe for concurrent use.
type Client struct {
	base                string
	triggerURL, bulkURL string
	auth                string
	timeout             time.Duration
	http                *http.Client
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: base URL %q is not an http(s) URL", ErrConfig, cfg.BaseURL)
	}
	if cfg.SecretKey == "" {
		return nil, fmt.Errorf("%w: empty secret key", ErrConfig)
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("%w: timeout must be positive", ErrConfig)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	return &Client{
		base:       base,
		triggerURL: base + TriggerPath,
		bulkURL:    base + BulkTriggerPath,
		auth:       "ApiKey " + cfg.SecretKey,
		timeout:    cfg.Timeout,
		http:       hc,
	}, nil
}

// Trigger sends one trigger of cmd with the given Idempotency-Key and returns
// Novu's answer, or the kind of transport failure. The trace context of ctx
// travels in the traceparent header when the client's transport is
// instrumented (see [NewHTTPClient]).
func (c *Client) Trigger(ctx context.Context, cmd *events.TriggerCommand, idempotencyKey string) outcome.Answer {
	ctx = context.WithValue(ctx, spanAttrsKey{}, []attribute.KeyValue{
		events.WorkflowIDKey.String(cmd.WorkflowID),
		events.TransactionIDKey.String(cmd.TransactionID),
		events.SvixIDKey.String(cmd.SvixID),
	})
	return c.do(ctx, http.MethodPost, c.triggerURL, AppendTrigger(make([]byte, 0, 256+len(cmd.Payload)), cmd), idempotencyKey)
}

// TriggerBulk sends up to [MaxBulkEvents] triggers in one call; the answer
// holds one result per command, in order.
func (c *Client) TriggerBulk(ctx context.Context, cmds []*events.TriggerCommand, idempotencyKey string) outcome.Answer {
	size := 16
	for _, cmd := range cmds {
		size += 256 + len(cmd.Payload)
	}
	ctx = context.WithValue(ctx, spanAttrsKey{}, []attribute.KeyValue{bulkSizeKey.Int(len(cmds))})
	return c.do(ctx, http.MethodPost, c.bulkURL, AppendBulk(make([]byte, 0, size), cmds), idempotencyKey)
}

// do sends one call; body may be nil (a DELETE without body).
func (c *Client) do(ctx context.Context, method, url string, body []byte, idempotencyKey string) outcome.Answer {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return outcome.Answer{Err: outcome.Connection, ErrDetail: "build request: " + err.Error()}
	}
	req.Header["Authorization"] = []string{c.auth}
	if body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	req.Header["Accept"] = []string{"application/json"}
	req.Header["User-Agent"] = []string{userAgent}
	if idempotencyKey != "" {
		req.Header[IdempotencyKeyHeader] = []string{idempotencyKey}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return transportFailure(err)
	}
	defer resp.Body.Close()
	a := outcome.Answer{
		StatusCode: resp.StatusCode,
		Header: outcome.Header{
			RetryAfter:         resp.Header.Get(RetryAfterHeader),
			RateLimitRemaining: resp.Header.Get(RateLimitRemainingHeader),
			RateLimitReset:     resp.Header.Get(RateLimitResetHeader),
			IdempotencyReplay:  resp.Header.Get(IdempotencyReplayHeader),
		},
	}
	a.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil && resp.StatusCode/100 == 2 {
		// The answer was cut off: whether Novu took the trigger is unknown,
		// so it is retried (the transactionId dedupes).
		f := transportFailure(err)
		f.ErrDetail = "reading answer: " + f.ErrDetail
		return f
	}
	// Let the connection be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return a
}

// transportFailure classifies an error from Do or from reading the body.
func transportFailure(err error) outcome.Answer {
	detail := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		detail = ue.Err.Error()
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return outcome.Answer{Err: outcome.Timeout, ErrDetail: detail}
	case errors.Is(err, context.Canceled):
		return outcome.Answer{Err: outcome.Canceled, ErrDetail: detail}
	}
	return outcome.Answer{Err: outcome.Connection, ErrDetail: detail}
}

// NewHTTPClient returns a keep-alive client for Novu: a transport tuned to
// keep maxConns idle connections to the host (set it to the sink's
// concurrency), instrumented with otelhttp so each request gets a client span
// and carries traceparent, and no redirect following (a POST redirected
// becomes a GET; the sink reports the redirect instead). The per-request
// timeout is applied by [Client], not here.
func NewHTTPClient(maxConns int, tp trace.TracerProvider, prop propagation.TextMapPropagator) *http.Client {
	if maxConns < 1 {
		maxConns = 1
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = max(100, maxConns)
	t.MaxIdleConnsPerHost = maxConns
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 0 // bounded by the request context
	return Instrument(&http.Client{Transport: t}, tp, prop)
}

// Instrument returns a copy of hc whose transport is wrapped with otelhttp
// (client spans from tp, trace context injected with prop; nil means no spans
// and W3C propagation, never the globals) and which does not follow redirects
// unless hc says otherwise.
func Instrument(hc *http.Client, tp trace.TracerProvider, prop propagation.TextMapPropagator) *http.Client {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if prop == nil {
		prop = service.Propagator()
	}
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = idleCloser{base: base, RoundTripper: otelhttp.NewTransport(attrTransport{base},
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(prop),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)}
	if c.CheckRedirect == nil {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return &c
}

// idleCloser is the otelhttp transport plus CloseIdleConnections of the base
// transport, which otelhttp does not forward.
type idleCloser struct {
	http.RoundTripper
	base http.RoundTripper
}

// CloseIdleConnections closes the base transport's idle connections.
func (t idleCloser) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// CloseIdleConnections closes the client's idle keep-alive connections to
// Novu, so no connection goroutine outlives the sink.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// bulkSizeKey is the number of events of a bulk call.
const bulkSizeKey = attribute.Key("novu.bulk.size")

// spanAttrsKey carries the attributes of a call's HTTP client span in its context.
type spanAttrsKey struct{}

// attrTransport runs under otelhttp, so the context of its request holds the
// HTTP client span: it adds the call's workflow id, transactionId and svix-id.
type attrTransport struct{ base http.RoundTripper }

func (t attrTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if attrs, ok := r.Context().Value(spanAttrsKey{}).([]attribute.KeyValue); ok {
		trace.SpanFromContext(r.Context()).SetAttributes(attrs...)
	}
	return t.base.RoundTrip(r)
}
