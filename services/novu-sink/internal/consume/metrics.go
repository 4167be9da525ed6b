package consume

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Outcome label values of sink_triggers_total besides the runtime's
// (retried, dead_lettered, and the non-final paused and returned).
const (
	outcomeDelivered = "delivered"
	outcomeDryRun    = "dry_run"
)

// Status label values of sink_triggers_total besides HTTP status codes and "error".
const (
	// statusNotSent marks a message held or given back without calling
	// Novu: the breaker was open or the sink was stopping.
	statusNotSent = "not_sent"
	// statusInvalid marks a command that could not be decoded.
	statusInvalid = "invalid"
	// statusNone marks a dry run.
	statusNone = "none"
)

// metrics are the trigger sink's Prometheus collectors.
type metrics struct {
	gateMetrics
	triggers        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	endToEnd        prometheus.Histogram
	bulkSize        prometheus.Histogram
}

// newMetrics returns the trigger sink's collectors, unregistered.
func newMetrics() *metrics {
	return &metrics{
		gateMetrics: newGateMetrics("sink_", "Novu's trigger calls"),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sink_triggers_total",
			Help: "Trigger commands handled, by outcome (delivered, retried, dead_lettered, dry_run; paused and returned are not final) and Novu HTTP status (or error, not_sent, invalid, none).",
		}, []string{"outcome", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sink_novu_request_duration_seconds",
			Help:    "Duration of Novu API calls, by endpoint (trigger, bulk).",
			Buckets: prometheus.ExponentialBucketsRange(0.005, 30, 14),
		}, []string{"endpoint"}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pipeline_end_to_end_seconds",
			Help:    "From the receiver accepting the webhook to Novu accepting the trigger.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 60, 17),
		}),
		bulkSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sink_bulk_events",
			Help:    "Events per Novu bulk call.",
			Buckets: []float64{1, 10, 25, 50, 75, 100},
		}),
	}
}

// collectors lists the trigger sink's collectors besides the gate's, for registration.
func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.triggers, m.requestDuration, m.endToEnd, m.bulkSize}
}

// gateMetrics are the collectors of a breaker and a rate limiter guarding
// calls, one set for the trigger sink and one for the sync sink.
type gateMetrics struct {
	breakerState       prometheus.Gauge
	breakerTransitions *prometheus.CounterVec
	rateLimitWait      prometheus.Counter
}

// newGateMetrics returns the unregistered collectors of a breaker and a
// rate limiter guarding calls: <prefix>breaker_state,
// <prefix>breaker_transitions_total and <prefix>rate_limit_wait_seconds_total.
func newGateMetrics(prefix, calls string) gateMetrics {
	return gateMetrics{
		breakerState: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: prefix + "breaker_state",
			Help: "State of the circuit breaker of " + calls + ": 0 closed, 1 half-open, 2 open.",
		}),
		breakerTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "breaker_transitions_total",
			Help: "State changes of the circuit breaker of " + calls + ", by from and to state.",
		}, []string{"from", "to"}),
		rateLimitWait: prometheus.NewCounter(prometheus.CounterOpts{
			Name: prefix + "rate_limit_wait_seconds_total",
			Help: "Seconds " + calls + " spent waiting for client-side rate-limit tokens, plus the seconds of pause Novu asked for (429 Retry-After, an empty bucket).",
		}),
	}
}

// collectors lists the gate's collectors, for registration.
func (g *gateMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{g.breakerState, g.breakerTransitions, g.rateLimitWait}
}
