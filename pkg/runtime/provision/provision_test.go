package provision_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/pkg/runtime/provision"
	"github.com/nats-io/nats.go/jetstream"
)

func declared(opts ...events.StreamOption) events.Resources {
	return events.Declared(events.ResourceOptions{Streams: opts, RoutesBucket: "ROUTES"})
}

func TestPlanOnEmptyServerCreatesEverything(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	ctx := t.Context()
	// eventstest creates the streams; a fresh server has none of the rest.
	changes, err := provision.Plan(ctx, js, declared())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	want := []string{"create consumer CLERK/router", "create consumer NOVU/novu-sink", "create consumer NOVU/novu-sink-sync", "create kv ROUTES", "create kv NOVU_SYNC_STATE"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("plan %q, want %q", got, want)
	}
	if err := provision.Apply(ctx, js, changes); err != nil {
		t.Fatal(err)
	}
	again, err := provision.Plan(ctx, js, declared())
	if err != nil || len(again) != 0 {
		t.Fatalf("after apply: plan %v, err %v", again, err)
	}
}

func TestPlanReportsDriftAndApplyFixesIt(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	ctx := t.Context()
	d := declared(events.WithDuplicateWindow(2 * time.Minute))
	d.Consumers[0].Config.AckWait = time.Minute
	if _, err := provision.PlanAndApply(ctx, js, declared()); err != nil {
		t.Fatal(err)
	}
	changes, err := provision.Plan(ctx, js, d)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	want := []string{
		"update stream CLERK: duplicate window 36h0m0s -> 2m0s",
		"update stream NOVU: duplicate window 36h0m0s -> 2m0s",
		"update consumer CLERK/router: ack wait 30s -> 1m0s",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("plan\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := provision.Apply(ctx, js, changes); err != nil {
		t.Fatal(err)
	}
	if got := streamDuplicates(t, js, events.StreamClerk); got != 2*time.Minute {
		t.Errorf("CLERK duplicates %v after apply", got)
	}
}

func TestEnsureNeverChangesWhatExists(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	ctx := t.Context()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	d := events.Resources{
		Streams:   events.StreamConfigs(events.WithDuplicateWindow(2 * time.Minute)),
		Consumers: []events.Consumer{events.RouterConsumer()},
	}
	if err := provision.Ensure(ctx, js, d, true, log); err != nil {
		t.Fatal(err)
	}
	if got := streamDuplicates(t, js, events.StreamClerk); got != 36*time.Hour {
		t.Errorf("CLERK duplicates %v, want the 36h it had", got)
	}
	if _, err := js.Consumer(ctx, events.StreamClerk, events.DurableRouter); err != nil {
		t.Errorf("missing consumer not created: %v", err)
	}
	want := "stream CLERK: duplicate window is 36h0m0s on the server, 2m0s configured; run clerknovu provision to apply"
	if n := strings.Count(logs.String(), want); n != 1 {
		t.Errorf("warning %q logged %d times; logs:\n%s", want, n, logs.String())
	}
}

func TestEnsureWithoutCreateNamesWhatIsMissing(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	d := events.Resources{Consumers: []events.Consumer{events.SinkConsumer()}}
	err := provision.Ensure(t.Context(), js, d, false, slog.New(slog.DiscardHandler))
	if !errors.Is(err, provision.ErrMissing) || !strings.Contains(err.Error(), "consumer NOVU/novu-sink") || !strings.Contains(err.Error(), "NATS_PROVISION=true") {
		t.Fatalf("err = %v", err)
	}
	if _, err := js.Consumer(t.Context(), events.StreamNovu, events.DurableSink); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("consumer created anyway: %v", err)
	}
}

func streamDuplicates(t *testing.T, js jetstream.JetStream, name string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config.Duplicates
}
