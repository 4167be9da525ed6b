package app

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// consumerMetrics exports the durable consumer's pipeline_consumer_* gauges
// as an unchecked collector (it describes nothing): the sink exports the same
// metric names for its own consumer, so when the devstack embeds every service
// with one registry, a checked collector would be refused as a duplicate. The
// stream and consumer labels keep the series apart. An unchecked collector
// cannot be unregistered, so [Run] switches it off when it returns.
type consumerMetrics struct {
	prometheus.Collector
	off atomic.Bool
}

// Describe describes nothing: the collector is unchecked.
func (*consumerMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect reads the consumer's state from the server while Run runs.
func (c *consumerMetrics) Collect(ch chan<- prometheus.Metric) {
	if !c.off.Load() {
		c.Collector.Collect(ch)
	}
}
