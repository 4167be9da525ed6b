package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// With NATS unreachable, readiness and the start-up steps say which URL and
// why ("connection refused"), not what a publish on a connection that is down
// fails with ("outbound buffer limit exceeded", "headers not supported").
func TestNotConnectedNamesURLAndCause(t *testing.T) {
	url := "nats://" + closedPort(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	nc, err := Connect(NATSConfig{URL: url}, "test", log)
	if err != nil {
		t.Fatalf("Connect retries in the background, want no error, got %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	wantCause := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrNotConnected) || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), url) {
			t.Errorf("%s: err = %v, want ErrNotConnected naming %s and connection refused", what, err, url)
		}
		for _, misleading := range []string{"outbound buffer", "headers not supported"} {
			if err != nil && strings.Contains(err.Error(), misleading) {
				t.Errorf("%s: err = %v, says %q instead of the cause", what, err, misleading)
			}
		}
	}

	wantCause("NotConnected", NotConnected(nc))
	_, err = NATSCheck(nc, js, events.StreamClerk).Func(t.Context())
	wantCause("readiness", err)

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = UntilConnected(ctx, nc, log, "provision stream CLERK", func(ctx context.Context) error {
		_, err := js.CreateOrUpdateStream(ctx, events.StreamConfigs()[0])
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("UntilConnected: err = %v, want the context's error", err)
	}
	wantCause("UntilConnected", err)
	if !strings.Contains(logs.String(), "connection refused") || strings.Contains(logs.String(), "outbound buffer") {
		t.Errorf("the waiting-for-NATS warning does not give the cause:\n%s", logs.String())
	}
}

func TestNotConnectedWhenConnected(t *testing.T) {
	s := eventstest.RunServer(t)
	nc, err := Connect(NATSConfig{URL: s.ClientURL()}, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := NotConnected(nc); err != nil {
		t.Fatalf("NotConnected on a live connection = %v, want nil", err)
	}
	nc.Close()
	if err := NotConnected(nc); !errors.Is(err, ErrNotConnected) || !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("NotConnected after Close = %v, want ErrNotConnected and ErrConnectionClosed", err)
	}
}
