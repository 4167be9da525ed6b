package service

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/nats-io/nats.go"
)

func TestDurableConsumer(t *testing.T) {
	s := eventstest.RunServer(t)
	_, js := eventstest.Connect(t, s.ClientURL())
	cfg := events.ConsumerConfig(events.DurableRouter)

	_, err := DurableConsumer(t.Context(), js, events.StreamClerk, cfg, false)
	if err == nil || !strings.Contains(err.Error(), "NATS_PROVISION=true") {
		t.Fatalf("missing consumer without provisioning: err = %v, want one saying to set NATS_PROVISION=true", err)
	}
	if _, err := DurableConsumer(t.Context(), js, events.StreamClerk, cfg, true); err != nil {
		t.Fatalf("provisioning: %v", err)
	}
	cons, err := DurableConsumer(t.Context(), js, events.StreamClerk, cfg, false)
	if err != nil {
		t.Fatalf("existing consumer without provisioning: %v", err)
	}
	if got := cons.CachedInfo().Config.Durable; got != events.DurableRouter {
		t.Errorf("durable = %q, want %q", got, events.DurableRouter)
	}
}

func TestUntilConnected(t *testing.T) {
	s := eventstest.RunServer(t)
	nc, _ := eventstest.Connect(t, s.ClientURL())
	log := slog.New(slog.DiscardHandler)

	calls := 0
	err := UntilConnected(t.Context(), nc, log, "step", func(context.Context) error {
		if calls++; calls < 3 {
			return nats.ErrNoResponders // JetStream not up yet
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("transient errors: err = %v after %d calls, want nil after 3", err, calls)
	}

	permanent := errors.New("stream name already in use with a different configuration")
	calls = 0
	err = UntilConnected(t.Context(), nc, log, "step", func(context.Context) error { calls++; return permanent })
	if !errors.Is(err, permanent) || calls != 1 || !strings.HasPrefix(err.Error(), "step: ") {
		t.Fatalf("permanent error: err = %v after %d calls, want it at once, prefixed", err, calls)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = UntilConnected(ctx, nc, log, "step", func(context.Context) error { return nats.ErrTimeout })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("context ended: err = %v, want the context's error", err)
	}
}
