package service

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition. It returns a short detail (shown on /readyz
// even when ready, e.g. a breaker state) and an error when not ready.
type Check struct {
	Name string
	Func func(ctx context.Context) (detail string, err error)
}

// NATSCheck is ready when nc is connected and stream answers. The
// connection state is read on every call; the stream lookup, a JetStream API
// call, is made at most once per [StreamCheckInterval] whatever the rate of
// probes, so a flood of /readyz cannot load the server.
func NATSCheck(nc *nats.Conn, js jetstream.JetStream, stream string) Check {
	var (
		mu      sync.Mutex
		checked time.Time
		lastErr error
	)
	return Check{Name: "nats", Func: func(ctx context.Context) (string, error) {
		if err := NotConnected(nc); err != nil {
			return nc.Status().String(), err
		}
		mu.Lock()
		defer mu.Unlock()
		if checked.IsZero() || time.Since(checked) >= StreamCheckInterval {
			_, lastErr = js.Stream(ctx, stream)
			checked = time.Now()
		}
		if lastErr != nil {
			return "stream " + stream + " unreachable", lastErr
		}
		return "connected, stream " + stream + " reachable", nil
	}}
}

// StreamCheckInterval is how long [NATSCheck] reuses a stream lookup.
const StreamCheckInterval = time.Second

// NewRegistry returns a metrics registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// RegisterOps adds GET /healthz (the process is alive), GET /readyz (every check
// passes; 503 otherwise, with a JSON detail per check) and GET /metrics
// (Prometheus text format) to mux.
func RegisterOps(mux *http.ServeMux, reg prometheus.Gatherer, checks ...Check) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		type result struct {
			OK     bool   `json:"ok"`
			Detail string `json:"detail,omitempty"`
			Error  string `json:"error,omitempty"`
		}
		out := struct {
			Ready  bool              `json:"ready"`
			Checks map[string]result `json:"checks"`
		}{Ready: true, Checks: map[string]result{}}
		for _, c := range checks {
			detail, err := c.Func(ctx)
			res := result{OK: err == nil, Detail: detail}
			if err != nil {
				res.Error = err.Error()
				out.Ready = false
			}
			out.Checks[c.Name] = res
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !out.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	if reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
}

// ConsumerCollector exports a durable consumer's pending, ack-pending and
// redelivered counts, read from the server at scrape time. The stream and
// consumer are constant labels, so the collectors of several services (as in
// devstack, where they share a process) register side by side in one registry.
func ConsumerCollector(js jetstream.JetStream, stream, durable string) prometheus.Collector {
	labels := prometheus.Labels{"stream": stream, "consumer": durable}
	return &consumerCollector{
		js: js, stream: stream, durable: durable,
		pending:     prometheus.NewDesc("pipeline_consumer_pending_messages", "Messages in the stream not yet delivered to the consumer.", nil, labels),
		ackPending:  prometheus.NewDesc("pipeline_consumer_ack_pending_messages", "Messages delivered and not yet acknowledged.", nil, labels),
		redelivered: prometheus.NewDesc("pipeline_consumer_redelivered_messages", "Messages delivered more than once and not yet acknowledged.", nil, labels),
	}
}

type consumerCollector struct {
	js                               jetstream.JetStream
	stream, durable                  string
	pending, ackPending, redelivered *prometheus.Desc
}

func (c *consumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redelivered
}

func (c *consumerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cons, err := c.js.Consumer(ctx, c.stream, c.durable)
	if err != nil {
		return
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending))
	ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending))
	ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered))
}

// NewHTTPServer returns an http.Server with timeouts suited to webhooks and probes.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}
