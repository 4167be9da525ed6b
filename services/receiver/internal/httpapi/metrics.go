package httpapi

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the receiver's Prometheus metrics:
// receiver_webhooks_total{outcome}, receiver_publish_duration_seconds and
// receiver_webhooks_in_flight.
type Metrics struct {
	webhooks        [numOutcomes]prometheus.Counter
	publishDuration prometheus.Histogram
	inFlight        prometheus.Gauge
}

// NewMetrics creates the metrics and registers them on reg (skipped when reg
// is nil). Every outcome is exported from the start, at zero.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	webhooks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "receiver_webhooks_total",
		Help: "Webhooks answered, by outcome: accepted, duplicate, bad_signature, bad_request, too_large, unavailable.",
	}, []string{"outcome"})
	m := &Metrics{
		publishDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "receiver_publish_duration_seconds",
			Help:    "Time from publishing a verified webhook to JetStream's acknowledgement (or failure).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15), // 0.5 ms to about 8 s
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "receiver_webhooks_in_flight",
			Help: "Webhooks being read, verified or published (bounded by RECEIVER_MAX_IN_FLIGHT).",
		}),
	}
	for o := range numOutcomes {
		m.webhooks[o] = webhooks.WithLabelValues(o.String())
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{webhooks, m.publishDuration, m.inFlight} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register receiver metrics: %w", err)
			}
		}
	}
	return m, nil
}
