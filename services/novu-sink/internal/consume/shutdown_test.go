package consume

import (
	"context"
	"errors"
	"testing"
	"time"

	rt "github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
	"github.com/prometheus/client_golang/prometheus"
)

// Stopping an instance whose Novu calls outlast the ack wait keeps their
// messages alive until the calls are answered and settled: a second
// instance on the same consumer never gets them mid-flight, so nothing is
// sent twice, and every message is acked.
func TestStopKeepsCallsInFlightAlive(t *testing.T) {
	h := newHarness(t, novufake.WithLatency(1500*time.Millisecond))
	const n = 4
	cmds := commands(n, "welcome")
	h.publish(cmds...)
	cfg := testConfig()
	cfg.AckWait = 500 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	sinkA := h.newSink(cfg, h.js, testKey)
	stopA := h.run(sinkA, h.js, cfg)
	h.eventually(10*time.Second, "every call in flight", func() bool { return h.fake.Calls() == n })

	h.reg = prometheus.NewRegistry() // instance B has its own metrics
	h.start(cfg)                     // on the same durable consumer
	stopA()                          // returns once A's calls are answered and settled
	h.eventually(10*time.Second, "every command acked", func() bool { return h.allAcked(n) })
	for _, c := range cmds {
		if got := len(h.fake.ByTransactionID(c.TransactionID)); got != 1 {
			t.Errorf("transaction %s sent %d times, want once: it was redelivered while its call was in flight", c.TransactionID, got)
		}
	}
	if info := h.consumerInfo(); info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered, want 0", info.NumRedelivered)
	}
}

// A call that outlasts the shutdown budget does not hold the stop: Run
// returns soon after the budget, saying so, and the message is left for
// redelivery (not acked).
func TestStopKeepsTheBudget(t *testing.T) {
	h := newHarness(t, novufake.WithLatency(3*time.Second))
	h.publish(command(1, "welcome"))
	cfg := testConfig()
	cfg.ShutdownTimeout = 300 * time.Millisecond
	sink := h.newSink(cfg, h.js, testKey)
	cons := h.consumer(h.js, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sink.Run(ctx, cons) }()
	h.eventually(10*time.Second, "the call in flight", func() bool { return h.fake.Calls() == 1 })
	stopped := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, rt.ErrShutdownDeadline) {
			t.Errorf("Run = %v, want ErrShutdownDeadline", err)
		}
		if took := time.Since(stopped); took > 2*time.Second {
			t.Errorf("stop took %v with a %v budget", took, cfg.ShutdownTimeout)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return after its budget")
	}
	if info := h.consumerInfo(); info.AckFloor.Stream != 0 {
		t.Errorf("ack floor %d: the unanswered call's message was settled, want it left for redelivery", info.AckFloor.Stream)
	}
}
