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
	"github.com/clerknovu/pipeline/pkg/runtime/provision"
	"github.com/nats-io/nats-server/v2/server"
	natsserver "github.com/nats-io/nats-server/v2/test"
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

// A service whose NATS user may subscribe to its own inbox prefix only still
// makes JetStream API requests, gets its PubAcks and fetches from a pull
// consumer, once NATS_INBOX_PREFIX names that prefix; with the default
// _INBOX it is refused.
func TestInboxPrefixUnderLeastPrivilege(t *testing.T) {
	o := natsserver.DefaultTestOptions
	o.Host, o.Port, o.JetStream, o.StoreDir = "127.0.0.1", -1, true, t.TempDir()
	o.Users = []*server.User{
		{Username: "admin", Password: "admin"},
		{Username: "svc", Password: "svc", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.>", "clerk.>", "$JS.ACK.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_svc.>"}},
		}},
	}
	s := natsserver.RunServer(&o)
	t.Cleanup(s.Shutdown)

	admin, err := nats.Connect(s.ClientURL(), nats.UserInfo("admin", "admin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	ajs, _ := jetstream.New(admin)
	if _, err := provision.PlanAndApply(t.Context(), ajs, events.Declared(events.ResourceOptions{})); err != nil {
		t.Fatal(err)
	}
	if _, err := ajs.CreateOrUpdateConsumer(t.Context(), events.StreamClerk, events.RouterConsumer().Config); err != nil {
		t.Fatal(err)
	}

	env := NewEnv(func(k string) string {
		return map[string]string{"NATS_URL": s.ClientURL(), "NATS_USER": "svc", "NATS_PASSWORD": "svc", "NATS_INBOX_PREFIX": "_INBOX_svc"}[k]
	})
	cfg := env.NATS()
	if err := env.Err(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)

	deflt := cfg
	deflt.InboxPrefix = DefaultInboxPrefix
	nc, err := Connect(deflt, "default-inbox", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	_, err = js.Stream(ctx, events.StreamClerk)
	cancel()
	if err == nil {
		t.Fatal("a JetStream request with replies on _INBOX succeeded for a user limited to _INBOX_svc.>: the test's permissions do not bite")
	}

	nc, err = Connect(cfg, "own-inbox", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ = jetstream.New(nc)
	ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, events.StreamClerk); err != nil {
		t.Fatalf("stream info with NATS_INBOX_PREFIX: %v", err)
	}
	if _, err := js.Publish(ctx, "clerk.user.created", []byte(`{}`)); err != nil {
		t.Fatalf("publish and PubAck: %v", err)
	}
	paf, err := js.PublishAsync("clerk.user.updated", []byte(`{}`))
	if err != nil {
		t.Fatalf("async publish: %v", err)
	}
	select {
	case <-paf.Ok():
	case err := <-paf.Err():
		t.Fatalf("async PubAck: %v", err)
	case <-ctx.Done():
		t.Fatal("no async PubAck")
	}
	cons, err := js.Consumer(ctx, events.StreamClerk, events.DurableRouter)
	if err != nil {
		t.Fatalf("consumer lookup: %v", err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	n := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
		n++
	}
	if n != 2 || batch.Error() != nil {
		t.Fatalf("fetched %d messages (err %v), want 2", n, batch.Error())
	}
}

func TestInboxPrefixConfig(t *testing.T) {
	for _, tt := range []struct {
		value, want string
		ok          bool
	}{
		{"", "", true}, // nats.go's default, _INBOX
		{"_INBOX_router", "_INBOX_router", true},
		{"_I.router", "_I.router", true},
		{"_INBOX.>", "", false},
		{"_INBOX.", "", false},
		{"a b", "", false},
		{"*", "", false},
	} {
		env := NewEnv(func(k string) string { return map[string]string{"NATS_INBOX_PREFIX": tt.value}[k] })
		c := env.NATS()
		err := env.Err()
		if (err == nil) != tt.ok {
			t.Errorf("NATS_INBOX_PREFIX=%q: err = %v, want ok %v", tt.value, err, tt.ok)
			continue
		}
		if tt.ok && c.InboxPrefix != tt.want {
			t.Errorf("NATS_INBOX_PREFIX=%q: prefix %q, want %q", tt.value, c.InboxPrefix, tt.want)
		}
		if !tt.ok && !strings.Contains(err.Error(), "NATS_INBOX_PREFIX") {
			t.Errorf("NATS_INBOX_PREFIX=%q: err %v does not name the variable", tt.value, err)
		}
	}
}
