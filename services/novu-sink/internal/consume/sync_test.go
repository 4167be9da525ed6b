package consume

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	rt "github.com/clerknovu/pipeline/pkg/runtime/consume"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/syncorder"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// syncState creates the sync state bucket once per harness.
func (h *harness) syncState() jetstream.KeyValue {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := h.js.CreateOrUpdateKeyValue(ctx, events.SyncStateKV())
	if err != nil {
		h.t.Fatalf("sync state bucket: %v", err)
	}
	return kv
}

// startSync runs a sync sink named owner on novu-sink-sync, with its own registry.
func (h *harness) startSync(cfg Config, owner string, reg *prometheus.Registry) *SyncSink {
	h.t.Helper()
	c, err := novu.New(novu.Config{BaseURL: h.fake.URL, SecretKey: testKey, Timeout: 2 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	s, err := NewSync(cfg, SyncDeps{Deps: Deps{Logger: slog.New(h.logs), Registerer: reg, Publisher: h.js}, SyncNotifier: c, State: h.syncState(), Owner: owner})
	if err != nil {
		h.t.Fatalf("NewSync: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	cons, err := h.js.CreateOrUpdateConsumer(ctx, events.StreamNovu, events.SinkSyncConsumer(
		events.WithAckWait(cfg.AckWait), events.WithMaxDeliver(rt.ServerMaxDeliver(cfg.MaxDeliver))).Config)
	cancel()
	if err != nil {
		h.t.Fatalf("create consumer: %v", err)
	}
	runCtx, cancelRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx, cons) }()
	h.t.Cleanup(func() {
		cancelRun()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("sync Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			h.t.Errorf("sync Run did not return")
		}
	})
	return s
}

// publishSync stores sync commands in NOVU as the router would.
func (h *harness) publishSync(cmds ...events.SyncCommand) {
	h.t.Helper()
	for _, c := range cmds {
		body, err := events.EncodeSyncCommand(c)
		if err != nil {
			h.t.Fatal(err)
		}
		subj, err := events.NovuSyncSubject(c.Kind)
		if err != nil {
			h.t.Fatal(err)
		}
		msg := nats.NewMsg(subj)
		msg.Data = body
		msg.Header.Set(jetstream.MsgIDHeader, c.ID)
		if _, err := h.js.PublishMsgAsync(msg); err != nil {
			h.t.Fatal(err)
		}
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		h.t.Fatal("no PubAck")
	}
}

// syncSettled reports whether novu-sink-sync has settled everything.
func (h *harness) syncSettled() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.js.Consumer(ctx, events.StreamNovu, events.DurableSinkSync)
	if err != nil {
		return false
	}
	info, err := c.Info(ctx)
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

var syncSeq int

func syncCmd(kind, user, org string, ts int64, email string) events.SyncCommand {
	syncSeq++
	c := events.SyncCommand{Kind: kind, SvixID: fmt.Sprintf("msg_s%d", syncSeq), EventTimestamp: ts, UpdatedAt: ts}
	switch kind {
	case events.SyncSubscriberUpsert:
		c.Subscriber = &events.Subscriber{SubscriberID: user, Email: email, Data: map[string]string{"clerkUserId": user}}
	case events.SyncSubscriberDelete:
		c.SubscriberID = user
	case events.SyncTopicDelete:
		c.OrganizationID, c.TopicKey = org, "org-"+org
	default:
		c.SubscriberID, c.OrganizationID, c.TopicKey = user, org, "org-"+org
	}
	c.ID = events.SyncID(c.SvixID, kind, c.TopicKey+"/"+c.SubscriberKey())
	return c
}

func TestSyncSink(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	h.startSync(testConfig(), "a", reg)
	step := func(what string, c events.SyncCommand, check func() bool) {
		t.Helper()
		h.publishSync(c)
		h.eventually(10*time.Second, what, func() bool { return h.syncSettled() && check() })
	}
	email := func(id string) string { s, _ := h.fake.Subscriber(id); return s.Field("email") }
	members := func(org string) []string { ids, _ := h.fake.Topic("org-" + org); return ids }

	step("user.created upserts with the primary email", syncCmd(events.SyncSubscriberUpsert, "u1", "", 100, "old@example.com"),
		func() bool { return email("u1") == "old@example.com" })
	step("a newer user.updated changes the email", syncCmd(events.SyncSubscriberUpsert, "u1", "", 300, "new@example.com"),
		func() bool { return email("u1") == "new@example.com" })
	step("an older user.updated delivered after it changes nothing", syncCmd(events.SyncSubscriberUpsert, "u1", "", 200, "mid@example.com"),
		func() bool { return true })
	if email("u1") != "new@example.com" {
		t.Fatalf("email = %q after a stale update", email("u1"))
	}
	step("u2 created", syncCmd(events.SyncSubscriberUpsert, "u2", "", 100, "u2@example.com"), func() bool { return email("u2") != "" })
	step("membership created adds to the topic", syncCmd(events.SyncTopicAdd, "u1", "o1", 400, ""),
		func() bool { return slices.Equal(members("o1"), []string{"u1"}) })
	step("a second member", syncCmd(events.SyncTopicAdd, "u2", "o1", 410, ""),
		func() bool { return slices.Equal(members("o1"), []string{"u1", "u2"}) })
	step("membership deleted removes", syncCmd(events.SyncTopicRemove, "u2", "o1", 500, ""),
		func() bool { return slices.Equal(members("o1"), []string{"u1"}) })
	step("user.deleted deletes", syncCmd(events.SyncSubscriberDelete, "u1", "", 600, ""),
		func() bool { _, ok := h.fake.Subscriber("u1"); return !ok })
	step("a user.updated after the delete does not re-create", syncCmd(events.SyncSubscriberUpsert, "u1", "", 700, "back@example.com"),
		func() bool { return true })
	step("nor does a membership", syncCmd(events.SyncTopicAdd, "u1", "o1", 710, ""), func() bool { return true })
	if _, ok := h.fake.Subscriber("u1"); ok {
		t.Fatal("u1 re-created after its deletion")
	}
	step("organization.deleted deletes the topic", syncCmd(events.SyncTopicDelete, "", "o1", 800, ""),
		func() bool { _, ok := h.fake.Topic("org-o1"); return !ok })
	step("deleting an unknown subscriber (404) counts as done", syncCmd(events.SyncSubscriberDelete, "ghost", "", 900, ""),
		func() bool { return true })
	if n := len(h.dlq()); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	mh := &harness{t: t, reg: reg}
	if n := mh.metric("sink_sync_skipped_total", "reason", "stale"); n != 1 {
		t.Errorf("stale skips = %v, want 1", n)
	}
	if n := mh.metric("sink_sync_skipped_total", "reason", "user_deleted"); n != 2 {
		t.Errorf("skips after the delete = %v, want 2", n)
	}
	if n := mh.metric("sink_sync_commands_total", "outcome", "delivered"); n != 9 {
		t.Errorf("delivered = %v, want 9", n)
	}
}

// TestSyncTwoInstances: two sink instances on one consumer and one state
// bucket, fed shuffled and redelivered commands, end in the state of the
// newest commands.
func TestSyncTwoInstances(t *testing.T) {
	h := newHarness(t)
	cfg := testConfig()
	h.startSync(cfg, "a", prometheus.NewRegistry())
	h.startSync(cfg, "b", prometheus.NewRegistry())
	var cmds []events.SyncCommand
	for u := range 4 {
		user := fmt.Sprintf("u%d", u)
		for v := 1; v <= 6; v++ {
			cmds = append(cmds, syncCmd(events.SyncSubscriberUpsert, user, "", int64(100*v), fmt.Sprintf("v%d@example.com", v)))
		}
	}
	cmds = append(cmds, syncCmd(events.SyncSubscriberDelete, "u3", "", 350, ""))
	rand.Shuffle(len(cmds), func(i, j int) { cmds[i], cmds[j] = cmds[j], cmds[i] })
	h.publishSync(cmds...)
	h.eventually(20*time.Second, "every command settled", h.syncSettled)
	for _, user := range []string{"u0", "u1", "u2"} {
		if s, _ := h.fake.Subscriber(user); s.Field("email") != "v6@example.com" {
			t.Errorf("%s: email %q, want the newest, v6@example.com", user, s.Field("email"))
		}
	}
	if _, ok := h.fake.Subscriber("u3"); ok {
		t.Error("u3 exists after its deletion")
	}
}

// TestSync429DoesNotSlowTriggers: Novu's configuration category answers 429
// to every sync call; triggers, in the events category, are all delivered
// meanwhile, and the sync completes once the 429s stop.
func TestSync429DoesNotSlowTriggers(t *testing.T) {
	limited := make(chan struct{})
	h := newHarness(t, novufake.WithHook(func(c novufake.Call) *novufake.Response {
		select {
		case <-limited:
			return nil
		default:
		}
		if c.Endpoint != novufake.EndpointTrigger && c.Endpoint != novufake.EndpointBulk {
			r := novufake.TooManyRequests(time.Second)
			return &r
		}
		return nil
	}))
	cfg := testConfig()
	reg := prometheus.NewRegistry()
	h.startSync(cfg, "a", reg)
	h.start(cfg)
	h.publishSync(syncCmd(events.SyncSubscriberUpsert, "u1", "", 100, "u1@example.com"))
	mh := &harness{t: t, reg: reg}
	h.eventually(10*time.Second, "the sync paused by a 429", func() bool {
		return mh.metric("sink_sync_commands_total", "outcome", "paused", "status", "429") > 0
	})
	var cmds []events.TriggerCommand
	for i := range 20 {
		cmds = append(cmds, command(i, "welcome"))
	}
	h.publish(cmds...)
	h.eventually(10*time.Second, "every trigger delivered", func() bool { return h.fake.AcceptedCount() == 20 })
	if _, ok := h.fake.Subscriber("u1"); ok {
		t.Fatal("the sync went through while Novu answered 429")
	}
	if h.metric("sink_rate_limit_wait_seconds_total") > 0.5 {
		t.Errorf("triggers waited %vs for the rate limit", h.metric("sink_rate_limit_wait_seconds_total"))
	}
	close(limited)
	h.eventually(10*time.Second, "the sync after the 429s", func() bool { _, ok := h.fake.Subscriber("u1"); return ok })
	for _, c := range h.fake.SyncCalls() {
		if c.StatusCode != http.StatusTooManyRequests && c.StatusCode != http.StatusCreated {
			t.Errorf("sync call answered %d", c.StatusCode)
		}
	}
}

// leaseWatch is a sync state bucket that notes whether an entry was written
// (a lease taken or released) while the rate limiter still held the calls.
type leaseWatch struct {
	syncorder.KV
	lim           *limiter
	writes        atomic.Int32
	writesOnPause atomic.Int32
}

// note counts a write, and one made while the limiter is paused.
func (w *leaseWatch) note() {
	w.writes.Add(1)
	if w.lim.paused() > 0 {
		w.writesOnPause.Add(1)
	}
}

// Create notes the write and creates the entry.
func (w *leaseWatch) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	w.note()
	return w.KV.Create(ctx, key, value, opts...)
}

// Update notes the write and updates the entry.
func (w *leaseWatch) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	w.note()
	return w.KV.Update(ctx, key, value, revision)
}

// TestSyncRateLimitWaitBeforeLease: a command held by the rate limiter (a
// pause after a 429) waits before it takes its object's lease, so the wait
// cannot outlast the lease and let another instance apply a newer command
// before this one reaches Novu.
func TestSyncRateLimitWaitBeforeLease(t *testing.T) {
	h := newHarness(t)
	cfg := testConfig()
	cfg.RetryMax = time.Second // the cap of the pause
	c, err := novu.New(novu.Config{BaseURL: h.fake.URL, SecretKey: testKey, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	kv := &leaseWatch{KV: h.syncState()}
	s, err := NewSync(cfg, SyncDeps{Deps: Deps{Logger: slog.New(h.logs), Publisher: h.js}, SyncNotifier: c, State: kv, Owner: "a"})
	if err != nil {
		t.Fatalf("NewSync: %v", err)
	}
	kv.lim = s.limiter
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.stopping = ctx

	cmd := syncCmd(events.SyncSubscriberUpsert, "u1", "", 100, "u1@example.com")
	body, err := events.EncodeSyncCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := events.NovuSyncSubject(cmd.Kind)
	if err != nil {
		t.Fatal(err)
	}
	s.limiter.pause(300 * time.Millisecond)
	start := time.Now()
	v := s.handleSync(ctx, &rt.Message{Subject: subj, Data: body, NumDelivered: 1})
	if v.Kind() != rt.KindAck {
		t.Fatalf("verdict %v, want an ack", v.Kind())
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("handled in %v, before the pause ended", d)
	}
	if kv.writes.Load() == 0 {
		t.Fatal("no lease taken")
	}
	if n := kv.writesOnPause.Load(); n != 0 {
		t.Errorf("%d sync state writes while the rate limiter held the call, want none", n)
	}
	if _, ok := h.fake.Subscriber("u1"); !ok {
		t.Error("the upsert did not reach Novu")
	}
}
