package syncorder

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// bucket starts an embedded server and creates the sync state bucket.
func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	_, js := eventstest.RunJetStream(t)
	kv, err := js.CreateKeyValue(t.Context(), events.SyncStateKV())
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func upsert(user string, ts, upd int64, email string) events.SyncCommand {
	return events.SyncCommand{Kind: events.SyncSubscriberUpsert, ID: fmt.Sprintf("up-%s-%d-%d", user, ts, upd), EventTimestamp: ts, UpdatedAt: upd,
		Subscriber: &events.Subscriber{SubscriberID: user, Email: email}}
}

func deleteUser(user string, ts int64) events.SyncCommand {
	return events.SyncCommand{Kind: events.SyncSubscriberDelete, ID: fmt.Sprintf("del-%s-%d", user, ts), SubscriberID: user, EventTimestamp: ts}
}

func member(kind, org, user string, ts int64) events.SyncCommand {
	return events.SyncCommand{Kind: kind, ID: fmt.Sprintf("%s-%s-%s-%d", kind, org, user, ts), SubscriberID: user,
		OrganizationID: org, TopicKey: "org-" + org, EventTimestamp: ts}
}

func deleteOrg(org string, ts int64) events.SyncCommand {
	return events.SyncCommand{Kind: events.SyncTopicDelete, ID: "delorg-" + org, OrganizationID: org, TopicKey: "org-" + org, EventTimestamp: ts}
}

func TestOrder(t *testing.T) {
	kv := bucket(t)
	m := NewMetrics()
	g := New(kv, Config{Owner: "a"}, nil, m)
	ctx := t.Context()
	steps := []struct {
		name   string
		cmd    events.SyncCommand
		fail   bool // the Novu call fails
		called bool
		reason string // skip reason, "" when applied
	}{
		{name: "user.created", cmd: upsert("u1", 100, 100, "old@example.com"), called: true},
		{name: "a newer user.updated", cmd: upsert("u1", 300, 300, "new@example.com"), called: true},
		{name: "an older user.updated delivered after it", cmd: upsert("u1", 200, 200, "mid@example.com"), reason: ReasonStale},
		{name: "the same version again", cmd: upsert("u1", 300, 300, "new@example.com"), reason: ReasonStale},
		{name: "same timestamp, newer updated_at", cmd: upsert("u1", 300, 301, "newer@example.com"), called: true},
		{name: "a failed call is not recorded", cmd: upsert("u1", 400, 400, "x@example.com"), fail: true, called: true},
		{name: "so its retry is applied", cmd: upsert("u1", 400, 400, "x@example.com"), called: true},
		{name: "membership created", cmd: member(events.SyncTopicAdd, "o1", "u1", 500), called: true},
		{name: "membership deleted", cmd: member(events.SyncTopicRemove, "o1", "u1", 700), called: true},
		{name: "an older membership created after the removal", cmd: member(events.SyncTopicAdd, "o1", "u1", 600), reason: ReasonStale},
		{name: "user.deleted older than the last update is still applied", cmd: deleteUser("u1", 350), called: true},
		{name: "a user.updated after the delete never re-creates", cmd: upsert("u1", 900, 900, "back@example.com"), reason: ReasonUserDeleted},
		{name: "nor does a membership of the deleted user", cmd: member(events.SyncTopicAdd, "o2", "u1", 950), reason: ReasonUserDeleted},
		{name: "the delete again", cmd: deleteUser("u1", 350), reason: ReasonStale},
		{name: "organization.deleted", cmd: deleteOrg("o3", 1000), called: true},
		{name: "a membership of the deleted organization", cmd: member(events.SyncTopicAdd, "o3", "u2", 1100), reason: ReasonOrganizationDeleted},
	}
	for _, s := range steps {
		called := false
		d, err := g.Apply(ctx, s.cmd, func(context.Context) bool { called = true; return !s.fail })
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if called != s.called || d.Skipped != (s.reason != "") || d.Reason != s.reason {
			t.Errorf("%s: called %v, decision %+v; want called %v, reason %q", s.name, called, d, s.called, s.reason)
		}
	}
	if n := testutil.ToFloat64(m.Skipped.WithLabelValues(events.SyncSubscriberUpsert, ReasonStale)); n != 2 {
		t.Errorf("stale upserts counted %v, want 2", n)
	}
	if n := testutil.ToFloat64(m.Skipped.WithLabelValues(events.SyncSubscriberUpsert, ReasonUserDeleted)); n != 1 {
		t.Errorf("upserts after the delete counted %v, want 1", n)
	}
	// No lease is left behind.
	e, err := kv.Get(ctx, "user.u1")
	if err != nil {
		t.Fatal(err)
	}
	var st state
	if err := json.Unmarshal(e.Value(), &st); err != nil || st.Lease != nil || !st.Deleted {
		t.Errorf("state = %s, %v", e.Value(), err)
	}
}

// TestTwoInstancesRace: two guards (two sink instances) applying the same
// shuffled commands concurrently never call Novu for one user at the same
// time, and end with the newest version applied, whatever the order.
func TestTwoInstancesRace(t *testing.T) {
	kv := bucket(t)
	ga := New(kv, Config{Owner: "a", Poll: 2 * time.Millisecond}, nil, nil)
	gb := New(kv, Config{Owner: "b", Poll: 2 * time.Millisecond}, nil, nil)
	type novu struct {
		mu      sync.Mutex
		email   map[string]string
		version map[string]Version
		deleted map[string]bool
	}
	n := novu{email: map[string]string{}, version: map[string]Version{}, deleted: map[string]bool{}}
	var inFlight [3]atomic.Int32
	var overlaps atomic.Int32
	var cmds []events.SyncCommand
	for u := range 3 {
		user := fmt.Sprintf("u%d", u)
		for v := 1; v <= 8; v++ {
			cmds = append(cmds, upsert(user, int64(100*v), int64(100*v), fmt.Sprintf("v%d@example.com", v)))
		}
	}
	cmds = append(cmds, deleteUser("u2", 450)) // u2 ends deleted, whatever came before or after
	// Each command is delivered twice (a redelivery), to either instance.
	cmds = append(cmds, cmds...)
	rand.Shuffle(len(cmds), func(i, j int) { cmds[i], cmds[j] = cmds[j], cmds[i] })
	var wg sync.WaitGroup
	for i, c := range cmds {
		g := ga
		if i%2 == 1 {
			g = gb
		}
		wg.Go(func() {
			user := c.SubscriberKey()
			idx := int(user[1] - '0')
			for {
				_, err := g.Apply(t.Context(), c, func(context.Context) bool {
					if inFlight[idx].Add(1) > 1 {
						overlaps.Add(1)
					}
					defer inFlight[idx].Add(-1)
					time.Sleep(time.Millisecond)
					n.mu.Lock()
					defer n.mu.Unlock()
					if c.Kind == events.SyncSubscriberDelete {
						n.deleted[user] = true
						delete(n.email, user)
					} else {
						n.deleted[user] = false
						n.email[user] = c.Subscriber.Email
						n.version[user] = VersionOf(c)
					}
					return true
				})
				if err == nil {
					return
				}
				t.Logf("retry %s: %v", c.ID, err)
			}
		})
	}
	wg.Wait()
	if o := overlaps.Load(); o != 0 {
		t.Errorf("%d Novu calls for one user overlapped", o)
	}
	for _, user := range []string{"u0", "u1"} {
		if n.email[user] != "v8@example.com" {
			t.Errorf("%s: email %q, want the newest, v8@example.com", user, n.email[user])
		}
	}
	if !n.deleted["u2"] || n.email["u2"] != "" {
		t.Errorf("u2: deleted %v, email %q; want deleted and never re-created", n.deleted["u2"], n.email["u2"])
	}
}

// TestExpiredLease: a lease left by an instance that died is taken over once
// it ends; a live one is waited for.
func TestExpiredLease(t *testing.T) {
	kv := bucket(t)
	ctx := t.Context()
	dead := New(kv, Config{Owner: "dead", Lease: 150 * time.Millisecond}, nil, nil)
	start := make(chan struct{})
	block := make(chan struct{})
	go func() {
		_, _ = dead.Apply(context.WithoutCancel(ctx), upsert("u1", 100, 100, "a@example.com"), func(context.Context) bool {
			close(start)
			<-block // never answers while the test looks
			return false
		})
	}()
	<-start
	g := New(kv, Config{Owner: "live", Lease: time.Second, Poll: 5 * time.Millisecond}, nil, nil)
	began := time.Now()
	called := false
	if _, err := g.Apply(ctx, upsert("u1", 200, 200, "b@example.com"), func(context.Context) bool { called = true; return true }); err != nil {
		t.Fatal(err)
	}
	close(block)
	if !called || time.Since(began) < 100*time.Millisecond {
		t.Errorf("called %v after %v: want the call after the dead lease ended", called, time.Since(began))
	}
}
