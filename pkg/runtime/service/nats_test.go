package service

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/nats-io/nats.go"
)

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
