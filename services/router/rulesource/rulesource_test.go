package rulesource

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/services/router/route"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const waitFor = 10 * time.Second

// routeOf returns the workflows typ goes to under src's rules, or nil.
func routeOf(src *Source, typ string) []string {
	targets, err := route.Route(src.Current(), events.Event{Type: typ, Data: json.RawMessage(`{}`)})
	if err != nil {
		return nil
	}
	var out []string
	for _, t := range targets {
		out = append(out, t.WorkflowID)
	}
	return out
}

func newSource(t *testing.T) *Source {
	t.Helper()
	file, err := route.Parse("file routes.yaml", []byte("rules:\n  - match: user.updated\n    workflows: [from-file]\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := New(slog.New(slog.DiscardHandler), nil, route.Defaults(), file)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestApplyAndRemove(t *testing.T) {
	src := newSource(t)
	if got := routeOf(src, "user.updated"); !slices.Equal(got, []string{"from-file"}) {
		t.Fatalf("base rules: user.updated → %v", got)
	}
	if err := src.Apply(2, []byte("rules:\n  - match: user.updated\n    workflows: [from-kv]\n")); err != nil {
		t.Fatal(err)
	}
	if got := routeOf(src, "user.updated"); !slices.Equal(got, []string{"from-kv"}) {
		t.Errorf("after a KV put: user.updated → %v", got)
	}
	err := src.Apply(3, []byte("rules:\n  - match: user.updated\n    workflow: typo\n"))
	if !errors.Is(err, route.ErrInvalidRules) || !strings.Contains(err.Error(), "kv /rules rev 3") {
		t.Errorf("invalid value: err = %v", err)
	}
	if got := routeOf(src, "user.updated"); !slices.Equal(got, []string{"from-kv"}) {
		t.Errorf("after an invalid put, the last good rules must stay: user.updated → %v", got)
	}
	if !strings.Contains(src.Status(), "rejected: ") {
		t.Errorf("Status = %q, want the rejection", src.Status())
	}
	if err := src.Apply(2, []byte("not: [valid")); err != nil {
		t.Errorf("an old revision must be ignored, got %v", err)
	}
	src.Remove(4)
	if got := routeOf(src, "user.updated"); !slices.Equal(got, []string{"from-file"}) {
		t.Errorf("after a delete: user.updated → %v", got)
	}
	if strings.Contains(src.Status(), "rejected") {
		t.Errorf("Status = %q after a delete", src.Status())
	}
	for result, want := range map[string]float64{ResultOK: 1, ResultInvalid: 1, ResultRemoved: 1} {
		if v := testutil.ToFloat64(src.reloads.WithLabelValues(SourceKV, result)); v != want {
			t.Errorf("reloads{kv,%s} = %v, want %v", result, v, want)
		}
	}
}

func TestNewRejectsInvalidBase(t *testing.T) {
	_, err := New(slog.New(slog.DiscardHandler), nil, route.Layer{Source: "file x", Rules: []route.Rule{{Match: "a.b"}}})
	if !errors.Is(err, route.ErrInvalidRules) {
		t.Errorf("err = %v, want ErrInvalidRules", err)
	}
}

func TestWatchKV(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()

	kv, err := js.CreateKeyValue(ctx, events.RoutesBucket("ROUTES"))
	if err != nil {
		t.Fatal(err)
	}
	// A value already in the bucket is in force before Watch returns.
	if _, err := kv.Put(ctx, events.RoutesKVKey, []byte("rules:\n  - match: role.*\n    workflows: [role-changed]\n    to: {topicKey: security}\n")); err != nil {
		t.Fatal(err)
	}
	src := newSource(t)
	if src.Loaded() {
		t.Fatal("loaded before the KV value was read")
	}
	stop, err := src.Watch(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !src.Loaded() {
		t.Error("not loaded after Watch")
	}
	if got := routeOf(src, "role.created"); !slices.Equal(got, []string{"role-changed"}) {
		t.Errorf("initial KV value: role.created → %v", got)
	}

	// An update takes effect without a restart.
	if _, err := kv.Put(ctx, events.RoutesKVKey, []byte("mode: replace\nrules:\n  - match: user.created\n    workflows: [welcome]\n")); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, waitFor, "the KV update to take effect", func() bool {
		return slices.Equal(routeOf(src, "user.created"), []string{"welcome"})
	})
	if got := routeOf(src, "role.created"); got != nil {
		t.Errorf("mode replace: role.created → %v, want no route", got)
	}

	// An invalid update is rejected; the last good rules stay.
	if _, err := kv.Put(ctx, events.RoutesKVKey, []byte("rules:\n  - match: user.created\n    workflows: [\"bad id\"]\n")); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, waitFor, "the invalid update to be rejected", func() bool {
		return testutil.ToFloat64(src.reloads.WithLabelValues(SourceKV, ResultInvalid)) == 1
	})
	if got := routeOf(src, "user.created"); !slices.Equal(got, []string{"welcome"}) {
		t.Errorf("after an invalid update: user.created → %v, want [welcome]", got)
	}
	if !strings.Contains(src.Status(), `workflow "bad id"`) {
		t.Errorf("Status = %q", src.Status())
	}

	// Deleting the key returns to the defaults and the file.
	if err := kv.Delete(ctx, events.RoutesKVKey); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, waitFor, "the delete to take effect", func() bool {
		return slices.Equal(routeOf(src, "user.created"), []string{"user-created"})
	})
}

func TestWatchGivesUpWithTheContext(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	kv, err := js.CreateKeyValue(t.Context(), events.RoutesBucket("ROUTES"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := newSource(t).Watch(ctx, kv); err == nil {
		t.Error("Watch with a canceled context succeeded")
	}
}

// A bucket deleted and created again starts its revisions at 1: its values
// must still take effect, and the old bucket's rules must not outlive it.
func TestWatchFollowsARecreatedBucket(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*waitFor)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, events.RoutesBucket("ROUTES"))
	if err != nil {
		t.Fatal(err)
	}
	for _, wf := range []string{"first", "second", "third"} { // revisions 1 to 3
		if _, err := kv.Put(ctx, events.RoutesKVKey, []byte("rules:\n  - match: user.created\n    workflows: ["+wf+"]\n")); err != nil {
			t.Fatal(err)
		}
	}
	src := newSource(t)
	src.reconcileEvery = 100 * time.Millisecond
	stop, err := src.Watch(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if got := routeOf(src, "user.created"); !slices.Equal(got, []string{"third"}) {
		t.Fatalf("user.created → %v, want [third]", got)
	}

	if err := js.DeleteKeyValue(ctx, "ROUTES"); err != nil {
		t.Fatal(err)
	}
	eventstest.Eventually(t, 2*waitFor, "the deleted bucket's rules to go", func() bool {
		return slices.Equal(routeOf(src, "user.created"), []string{"user-created"})
	})
	kv, err = js.CreateKeyValue(ctx, events.RoutesBucket("ROUTES"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, events.RoutesKVKey, []byte("rules:\n  - match: user.created\n    workflows: [fresh]\n")); err != nil { // revision 1
		t.Fatal(err)
	}
	eventstest.Eventually(t, 2*waitFor, "the recreated bucket's value to take effect", func() bool {
		return slices.Equal(routeOf(src, "user.created"), []string{"fresh"})
	})
}
