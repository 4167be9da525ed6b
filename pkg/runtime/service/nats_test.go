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
	"github.com/nats-io/nats-server/v2/server"
	natsserver "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	if err := Provision(t.Context(), ajs); err != nil {
		t.Fatal(err)
	}
	if _, err := ajs.CreateOrUpdateConsumer(t.Context(), events.StreamClerk, events.ConsumerConfig(events.DurableRouter)); err != nil {
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
