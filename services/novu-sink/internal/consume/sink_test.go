package consume

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

func TestDeliversEachCommandOnce(t *testing.T) {
	h := newHarness(t)
	var cmds []events.TriggerCommand
	for i := range 10 {
		cmds = append(cmds, command(i, "welcome"))
	}
	h.publish(cmds...)
	h.start(testConfig())

	h.eventually(10*time.Second, "10 deliveries acked", func() bool { return h.allAcked(10) })
	for _, c := range cmds {
		if n := h.fake.Count(c.TransactionID); n != 1 {
			t.Errorf("transaction %s accepted %d times, want 1", c.TransactionID, n)
		}
		got := h.fake.ByTransactionID(c.TransactionID)
		if len(got) != 1 {
			t.Fatalf("transaction %s sent %d times, want 1", c.TransactionID, len(got))
		}
		stored, err := events.ParseCommand(commandMsg(t, c).Data)
		if err != nil {
			t.Fatalf("ParseCommand: %v", err)
		}
		if got[0].IdempotencyKey != c.TransactionID || got[0].Name != "welcome" || string(got[0].Payload) != string(stored.Payload) {
			t.Errorf("request: name %q, Idempotency-Key %q, payload %s; want welcome, %s, the stored payload bytes %s",
				got[0].Name, got[0].IdempotencyKey, got[0].Payload, c.TransactionID, stored.Payload)
		}
	}
	if got := h.metric("sink_triggers_total", "outcome", "delivered", "status", "201"); got != 10 {
		t.Errorf("sink_triggers_total{delivered,201} = %v, want 10", got)
	}
	if got := h.metric("pipeline_end_to_end_seconds"); got != 10 {
		t.Errorf("pipeline_end_to_end_seconds count = %v, want 10", got)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ holds %d messages, want 0", len(d))
	}
}

// A Novu outage (a long run of 503s, shortened here with a 300 ms open
// period): the breaker opens, the sink stops fetching instead of cycling the
// backlog, nothing is dead-lettered, and every command goes out once Novu is back.
func TestOutageOpensBreakerAndStopsFetching(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	h := newHarness(t, novufake.WithHook(func(novufake.Call) *novufake.Response {
		if down.Load() {
			r := novufake.Unavailable(0)
			return &r
		}
		return nil
	}))
	const n = 40
	cmds := commands(n, "welcome")
	h.publish(cmds...)
	cfg := testConfig()
	h.start(cfg)

	h.eventually(10*time.Second, "the breaker to open", func() bool {
		return h.metric("sink_breaker_transitions_total", "from", "closed", "to", "open") == 1
	})
	callsAtOpen := h.fake.Calls()
	deliveredAtOpen := h.consumerInfo().Delivered.Consumer
	// Let three probes fail: about a second of outage with the breaker open.
	h.eventually(10*time.Second, "three failed probes", func() bool {
		return h.metric("sink_breaker_transitions_total", "from", "half-open", "to", "open") >= 3
	})
	calls := h.fake.Calls()
	probes := h.metric("sink_breaker_transitions_total", "to", "half-open")
	// While open only the probes reach Novu (plus calls already in flight when it opened).
	if limit := callsAtOpen + int64(cfg.Concurrency) + int64(probes); calls > limit {
		t.Errorf("Novu saw %d calls (%d when the breaker opened, %v probes): the sink kept calling while open, want at most %d",
			calls, callsAtOpen, probes, limit)
	}
	info := h.consumerInfo()
	if info.AckFloor.Stream != 0 {
		t.Errorf("ack floor = %d during the outage, want 0 (nothing acked)", info.AckFloor.Stream)
	}
	// Not fetching: deliveries grew by the probes only (plus a fetch under way when it opened).
	if grown, limit := info.Delivered.Consumer-deliveredAtOpen, uint64(probes)+uint64(cfg.Concurrency); grown > limit {
		t.Errorf("%d deliveries while the breaker was open (%v probes), want at most %d: the sink kept fetching", grown, probes, limit)
	}
	detail, err := h.sink.Check().Func(t.Context())
	if err != nil || !strings.Contains(detail, "open") {
		t.Errorf("readiness detail = %q, %v; want the breaker shown open (or half-open) and no error", detail, err)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Fatalf("DLQ holds %d messages during the outage, want 0", len(d))
	}

	down.Store(false)
	h.eventually(15*time.Second, "every command delivered after the outage", func() bool { return h.allAcked(n) })
	for _, c := range cmds {
		if got := h.fake.Count(c.TransactionID); got != 1 {
			t.Errorf("transaction %s accepted %d times, want 1", c.TransactionID, got)
		}
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ holds %d messages, want 0", len(d))
	}
	if got := h.metric("sink_breaker_state"); got != 0 {
		t.Errorf("sink_breaker_state = %v after recovery, want 0 (closed)", got)
	}
}

func TestPermanentAnswersAreDeadLettered(t *testing.T) {
	h := newHarness(t,
		novufake.WithWorkflow("missing", novufake.WorkflowNotFound()),
		novufake.WithWorkflow("paused", novufake.Status("trigger_not_active")))
	missing, paused := command(1, "missing"), command(2, "paused")
	h.publish(missing, paused)
	h.start(testConfig())

	h.eventually(10*time.Second, "both commands settled", func() bool { return h.allAcked(2) })
	dl := h.dlq()
	if len(dl) != 2 {
		t.Fatalf("DLQ holds %d messages, want 2", len(dl))
	}
	bySubject := map[string]*jetstream.RawStreamMsg{}
	for _, m := range dl {
		bySubject[m.Subject] = m
	}
	m := bySubject["dlq.sink.missing"]
	if m == nil {
		t.Fatalf("no dead letter on dlq.sink.missing; got %v", bySubject)
	}
	for key, want := range map[string]string{
		events.DLQReasonHeader:         "novu 422: workflow_not_found",
		events.DLQStageHeader:          events.StageSink,
		events.DLQHTTPStatusHeader:     "422",
		events.DLQDeliveriesHeader:     "1",
		events.DLQSourceSubjectHeader:  "novu.trigger.missing",
		events.DLQSourceSequenceHeader: "1",
		events.SvixIDHeader:            missing.SvixID,
		jetstream.MsgIDHeader:          "dlq.sink." + missing.TransactionID,
	} {
		if got := header(m, key); got != want {
			t.Errorf("dead letter header %s = %q, want %q", key, got, want)
		}
	}
	if got := header(m, events.DLQResponseHeader); !contains(got, "workflow_not_found") {
		t.Errorf("dead letter response = %q, want Novu's body", got)
	}
	if header(m, events.DLQFirstFailureHeader) == "" || header(m, events.DLQLastFailureHeader) == "" {
		t.Errorf("dead letter lacks failure times: %v", m.Header)
	}
	if want := string(commandMsg(t, missing).Data); string(m.Data) != want {
		t.Errorf("dead letter body = %s, want the command unchanged %s", m.Data, want)
	}
	if p := bySubject["dlq.sink.paused"]; p == nil || header(p, events.DLQReasonHeader) != "novu 201: trigger_not_active" {
		t.Errorf("dead letter of the paused workflow = %v, want reason novu 201: trigger_not_active", p)
	}
	// No retry: each was sent exactly once.
	for _, c := range []events.TriggerCommand{missing, paused} {
		if got := len(h.fake.ByTransactionID(c.TransactionID)); got != 1 {
			t.Errorf("%s sent %d times, want 1", c.WorkflowID, got)
		}
	}
	if got := h.metric("sink_triggers_total", "outcome", "dead_lettered", "status", "422"); got != 1 {
		t.Errorf("sink_triggers_total{dead_lettered,422} = %v, want 1", got)
	}
}

func TestTooManyRequestsWaitsRetryAfter(t *testing.T) {
	var calls atomic.Int64
	h := newHarness(t, novufake.WithHook(func(novufake.Call) *novufake.Response {
		if calls.Add(1) == 1 {
			r := novufake.TooManyRequests(time.Second)
			return &r
		}
		return nil
	}))
	c := command(1, "welcome")
	h.publish(c)
	cfg := testConfig()
	cfg.RetryMax = 5 * time.Second // Retry-After is honoured up to RetryMax
	h.start(cfg)

	h.eventually(10*time.Second, "delivery after the 429", func() bool { return h.allAcked(1) })
	sent := h.fake.ByTransactionID(c.TransactionID)
	if len(sent) != 2 || sent[0].StatusCode != 429 || sent[1].StatusCode != 201 {
		t.Fatalf("Novu saw %d requests (%+v), want a 429 then a 201", len(sent), sent)
	}
	if gap := sent[1].Received.Sub(sent[0].Received); gap < time.Second {
		t.Errorf("retried %v after the 429, want at least Retry-After: 1s", gap)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ holds %d messages, want 0", len(d))
	}
	if got := h.metric("sink_triggers_total", "outcome", "paused", "status", "429"); got != 1 {
		t.Errorf("sink_triggers_total{paused,429} = %v, want 1", got)
	}
	if info := h.consumerInfo(); info.Delivered.Consumer != 1 {
		t.Errorf("delivered %d times, want once: a 429 holds the message instead of NAKing it", info.Delivered.Consumer)
	}
}

func TestUnauthorizedKeepsMessagesAndLogsOnce(t *testing.T) {
	h := newHarness(t)
	h.fake.SetAPIKey("sk_the_right_one")
	const n = 5
	cmds := commands(n, "welcome")
	h.publish(cmds...)
	h.start(testConfig()) // calls with testKey: 401

	h.eventually(10*time.Second, "the breaker to open on 401 and two probes to fail", func() bool {
		return h.metric("sink_breaker_transitions_total", "from", "half-open", "to", "open") >= 2
	})
	calls := h.fake.Calls()
	probes := h.metric("sink_breaker_transitions_total", "to", "half-open")
	if limit := int64(4) + int64(probes); calls > limit { // in flight when it tripped + probes
		t.Errorf("Novu saw %d calls with a bad key (%v probes), want at most %d", calls, probes, limit)
	}
	errs := h.logs.at(slog.LevelError)
	if len(errs) != 1 {
		t.Fatalf("logged %d errors, want exactly 1 about the key: %v", len(errs), errs)
	}
	if msg := errs[0].Message; !strings.Contains(msg, "NOVU_SECRET_KEY") || !strings.Contains(msg, "401") {
		t.Errorf("error log = %q, want it to name NOVU_SECRET_KEY and 401", msg)
	}
	if info := h.consumerInfo(); info.AckFloor.Stream != 0 {
		t.Errorf("ack floor = %d with a bad key, want 0 (every message kept)", info.AckFloor.Stream)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Fatalf("DLQ holds %d messages, want 0: an outage never dead-letters", len(d))
	}
	detail, _ := h.sink.Check().Func(t.Context())
	if !strings.Contains(detail, "NOVU_SECRET_KEY") {
		t.Errorf("readiness detail = %q, want the key hint while open", detail)
	}

	h.fake.SetAPIKey(testKey) // the key is fixed
	h.eventually(15*time.Second, "delivery once the key works", func() bool { return h.allAcked(n) })
	for _, c := range cmds {
		if got := h.fake.Count(c.TransactionID); got != 1 {
			t.Errorf("transaction %s accepted %d times, want 1", c.TransactionID, got)
		}
	}
	if got := len(h.logs.at(slog.LevelError)); got != 1 {
		t.Errorf("logged %d errors in all, want 1", got)
	}
}

func TestBacklogGoesOutInBulk(t *testing.T) {
	var bulkCalls atomic.Int64
	h := newHarness(t,
		novufake.WithWorkflow("missing", novufake.WorkflowNotFound()),
		novufake.WithWorkflow("paused", novufake.Status("trigger_not_active")),
		novufake.WithHook(func(c novufake.Call) *novufake.Response {
			if c.Endpoint == novufake.EndpointBulk && bulkCalls.Add(1) == 1 {
				r := novufake.Unavailable(0) // the first bulk call fails as a whole
				return &r
			}
			return nil
		}))
	const n = 500
	var cmds []events.TriggerCommand
	wantDLQ := map[string]string{}
	for i := range n {
		wf := "welcome"
		switch {
		case i%50 == 7:
			wf = "missing"
			wantDLQ[events.TransactionID("msg_"+pad(i), wf)] = "workflow_not_found"
		case i%100 == 13:
			wf = "paused"
			wantDLQ[events.TransactionID("msg_"+pad(i), wf)] = "trigger_not_active"
		}
		cmds = append(cmds, command(i, wf))
	}
	h.publish(cmds...)
	cfg := testConfig()
	cfg.Bulk = true
	h.start(cfg)

	h.eventually(20*time.Second, "the backlog settled", func() bool { return h.allAcked(n) })
	sizes := h.fake.BulkSizes()
	total := 0
	for _, s := range sizes {
		if s > novu.MaxBulkEvents || s < 1 {
			t.Errorf("bulk call of %d events, want 1 to 100", s)
		}
		total += s
	}
	if len(sizes) < n/novu.MaxBulkEvents || total < n {
		t.Errorf("bulk calls carried %d events in %d calls (%v), want the %d commands (and the retried first call) in at least %d calls",
			total, len(sizes), sizes, n, n/novu.MaxBulkEvents)
	}
	// The failed first call's items come back as their retries fall due and
	// may go out one by one; everything else goes in bulk.
	if single := int(h.fake.Calls()) - len(sizes); single > novu.MaxBulkEvents+cfg.BulkMin {
		t.Errorf("%d single triggers besides the bulk calls, want the backlog in bulk", single)
	}
	for _, c := range cmds {
		want := 1
		if _, dead := wantDLQ[c.TransactionID]; dead {
			want = 0
		}
		if got := h.fake.Count(c.TransactionID); got != want {
			t.Errorf("transaction %s (%s) accepted %d times, want %d", c.TransactionID, c.WorkflowID, got, want)
		}
	}
	dl := h.dlq()
	if len(dl) != len(wantDLQ) {
		t.Fatalf("DLQ holds %d messages, want %d", len(dl), len(wantDLQ))
	}
	fromBulk := 0
	for _, m := range dl {
		tx := m.Header.Get(events.TransactionIDHeader)
		reason := m.Header.Get(events.DLQReasonHeader)
		if !strings.Contains(reason, wantDLQ[tx]) {
			t.Errorf("dead letter of %s: reason %q, want %q", tx, reason, wantDLQ[tx])
		}
		if strings.HasPrefix(reason, "novu 201: ") { // a bulk item's own result
			fromBulk++
			if resp := m.Header.Get(events.DLQResponseHeader); !strings.Contains(resp, tx) {
				t.Errorf("dead letter of %s: response %q, want its own bulk item", tx, resp)
			}
		}
	}
	// At most the 3 of the failed first call went out alone.
	if fromBulk < len(wantDLQ)-3 {
		t.Errorf("%d of %d dead letters came from bulk item results, want at least %d", fromBulk, len(wantDLQ), len(wantDLQ)-3)
	}
}

func pad(i int) string {
	s := strconv.Itoa(i)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

// The sink dies after Novu took a trigger and before the ack: the command is
// redelivered (after the ack wait) to another instance and sent again with the
// same transactionId and Idempotency-Key, which Novu deduplicates.
func TestRedeliveryAfterCrashKeepsTransactionID(t *testing.T) {
	h := newHarness(t)
	ncA, jsA := eventstest.Connect(t, h.url)
	var killed atomic.Bool
	h.fake.SetHook(func(novufake.Call) *novufake.Response {
		if killed.CompareAndSwap(false, true) {
			ncA.Close() // instance A dies while Novu processes its call
		}
		return nil
	})
	c := command(1, "welcome")
	h.publish(c)
	cfg := testConfig()
	cfg.AckWait = time.Second
	sinkA := h.newSink(cfg, jsA, testKey)
	stopA := h.run(sinkA, jsA, cfg)
	h.eventually(10*time.Second, "Novu to take the first call", func() bool { return h.fake.Count(c.TransactionID) == 1 })
	stopA()

	h.fake.SetHook(nil)
	h.reg = prometheus.NewRegistry() // instance B has its own metrics
	h.start(cfg)
	h.eventually(10*time.Second, "the redelivered command acked by instance B", func() bool { return h.allAcked(1) })
	sent := h.fake.ByTransactionID(c.TransactionID)
	if len(sent) != 2 {
		t.Fatalf("Novu saw %d requests for the command, want 2 (before and after the crash)", len(sent))
	}
	if sent[0].TransactionID != sent[1].TransactionID || sent[0].IdempotencyKey != sent[1].IdempotencyKey || sent[1].IdempotencyKey != c.TransactionID {
		t.Errorf("requests carried transactionId %q/%q and Idempotency-Key %q/%q, want %q on both",
			sent[0].TransactionID, sent[1].TransactionID, sent[0].IdempotencyKey, sent[1].IdempotencyKey, c.TransactionID)
	}
	if d := h.fake.Duplicates(); d[c.TransactionID] != 2 {
		t.Errorf("fake duplicates = %v, want the transaction seen twice (Novu drops the second by transactionId)", d)
	}
}

// The client-side limit spreads a burst at the configured rate: N commands
// need at least (N - burst) / rate seconds, and nothing is dead-lettered.
func TestRateLimitSpreadsABurst(t *testing.T) {
	h := newHarness(t)
	const n, perSecond = 140, 40.0
	cmds := commands(n, "welcome")
	h.publish(cmds...)
	cfg := testConfig()
	cfg.RateLimit = perSecond
	cfg.Concurrency = 8
	start := time.Now() // before the bucket exists, so the bound below is safe
	h.start(cfg)

	h.eventually(15*time.Second, "the burst delivered", func() bool { return h.allAcked(n) })
	var last time.Time
	for _, tr := range h.fake.Accepted() {
		if tr.Received.After(last) {
			last = tr.Received
		}
	}
	burst := float64(bulkCost) // the bucket holds one bulk call
	minimum := time.Duration((n - burst) / perSecond * float64(time.Second))
	if took := last.Sub(start); took < minimum {
		t.Errorf("%d triggers at %v/s took %v, want at least %v", n, perSecond, took, minimum)
	}
	if got := h.fake.AcceptedCount(); got != n {
		t.Errorf("accepted %d, want %d", got, n)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ holds %d messages, want 0", len(d))
	}
	if got := h.metric("sink_rate_limit_wait_seconds_total"); got <= 0 {
		t.Errorf("sink_rate_limit_wait_seconds_total = %v, want > 0", got)
	}
}

// Novu's own limit (RateLimit-* headers, 429 + Retry-After) slows the sink
// down without losing or dead-lettering anything.
func TestNovuRateLimitHeadersSlowDown(t *testing.T) {
	h := newHarness(t, novufake.WithRateLimit(20, 15)) // slower than any test machine calls: the bucket runs empty
	const n = 40
	cmds := commands(n, "welcome")
	h.publish(cmds...)
	cfg := testConfig()
	cfg.RateLimit = 0 // unlimited on our side: only Novu's headers slow it down
	cfg.RetryMax = 2 * time.Second
	h.start(cfg)

	h.eventually(20*time.Second, "the burst delivered", func() bool { return h.allAcked(n) })
	for _, c := range cmds {
		if got := h.fake.Count(c.TransactionID); got != 1 {
			t.Errorf("transaction %s accepted %d times, want 1", c.TransactionID, got)
		}
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ holds %d messages, want 0", len(d))
	}
	if got := h.metric("sink_rate_limit_wait_seconds_total"); got <= 0 {
		t.Errorf("sink_rate_limit_wait_seconds_total = %v, want > 0 after Novu's bucket ran empty", got)
	}
	if got := h.metric("sink_breaker_transitions_total"); got != 0 {
		t.Errorf("breaker changed state %v times on rate limiting, want 0", got)
	}
}

// Novu replays a cached 503 for a reused Idempotency-Key: the key is spent,
// the next attempt uses a fresh one and relies on the transactionId.
func TestReplayedErrorSpendsIdempotencyKey(t *testing.T) {
	var calls atomic.Int64
	h := newHarness(t, novufake.WithIdempotency(), novufake.WithHook(func(novufake.Call) *novufake.Response {
		if calls.Add(1) == 1 {
			r := novufake.Unavailable(0)
			return &r
		}
		return nil
	}))
	c := command(1, "welcome")
	h.publish(c)
	h.start(testConfig())

	h.eventually(10*time.Second, "delivery with a fresh key", func() bool { return h.allAcked(1) })
	sent := h.fake.ByTransactionID(c.TransactionID)
	var keys []string
	for _, s := range sent {
		keys = append(keys, s.IdempotencyKey)
	}
	want := []string{c.TransactionID, c.TransactionID, novu.IdempotencyKey(c.TransactionID, 1)}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("Idempotency-Keys sent = %v, want %v (first 503, replayed 503, fresh key)", keys, want)
	}
	if !sent[1].Replayed || sent[2].Status != "processed" {
		t.Errorf("second answer replayed = %v, third status = %q; want a replay then processed", sent[1].Replayed, sent[2].Status)
	}
	if got := h.fake.Count(c.TransactionID); got != 1 {
		t.Errorf("accepted %d times, want 1", got)
	}
}

func TestTransientFailuresDeadLetterAfterMaxDeliver(t *testing.T) {
	h := newHarness(t, novufake.WithWorkflow("broken", novufake.Response{StatusCode: 500, Message: "Internal server error"}))
	c := command(1, "broken")
	h.publish(c)
	cfg := testConfig()
	cfg.MaxDeliver = 3
	cfg.BreakerFailures = 10
	h.start(cfg)

	h.eventually(10*time.Second, "the dead letter", func() bool { return h.allAcked(1) })
	dl := h.dlq()
	if len(dl) != 1 {
		t.Fatalf("DLQ holds %d messages, want 1", len(dl))
	}
	if got := header(dl[0], events.DLQReasonHeader); !strings.Contains(got, "novu 500: Internal server error") || !strings.Contains(got, "gave up after 3 deliveries") {
		t.Errorf("reason = %q, want the 500 and the give-up", got)
	}
	if got := header(dl[0], events.DLQDeliveriesHeader); got != "3" {
		t.Errorf("deliveries = %q, want 3", got)
	}
	first, _ := time.Parse(time.RFC3339Nano, header(dl[0], events.DLQFirstFailureHeader))
	last, _ := time.Parse(time.RFC3339Nano, header(dl[0], events.DLQLastFailureHeader))
	if !first.Before(last) {
		t.Errorf("first failure %v not before last failure %v", first, last)
	}
	if got := len(h.fake.ByTransactionID(c.TransactionID)); got != 3 {
		t.Errorf("sent %d times, want 3", got)
	}
	h.sink.tracker.mu.Lock()
	tracked := len(h.sink.tracker.m)
	h.sink.tracker.mu.Unlock()
	if tracked != 0 {
		t.Errorf("tracker holds %d keys after the dead letter, want 0", tracked)
	}
}

func TestInvalidCommandIsDeadLettered(t *testing.T) {
	h := newHarness(t)
	msg := commandMsg(t, command(1, "welcome"))
	msg.Data = []byte(`{"workflowId":"welcome","to":{}}`)
	if _, err := h.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
	h.start(testConfig())
	h.eventually(10*time.Second, "the dead letter", func() bool { return h.allAcked(1) })
	dl := h.dlq()
	if len(dl) != 1 || dl[0].Subject != "dlq.sink.welcome" {
		t.Fatalf("DLQ = %d messages (%v), want 1 on dlq.sink.welcome", len(dl), dl)
	}
	if got := header(dl[0], events.DLQReasonHeader); !strings.Contains(got, "invalid trigger command") {
		t.Errorf("reason = %q, want invalid trigger command", got)
	}
	if h.fake.Calls() != 0 {
		t.Errorf("Novu saw %d calls, want 0", h.fake.Calls())
	}
}

// Stopping lets the calls in flight finish and acks them: nothing half-done.
func TestStopFinishesCallsInFlight(t *testing.T) {
	h := newHarness(t, novufake.WithLatency(300*time.Millisecond))
	const n = 4
	cmds := commands(n, "welcome")
	h.publish(cmds...)
	h.start(testConfig())
	h.eventually(10*time.Second, "every call in flight", func() bool { return h.fake.Calls() == n })
	h.stop()
	if got := h.fake.AcceptedCount(); got != n {
		t.Fatalf("Novu accepted %d, want %d", got, n)
	}
	if !h.allAcked(n) {
		t.Errorf("after stop, consumer = %+v; want every answered call acked", h.consumerInfo())
	}
}

func TestDryRunSendsNothingAndAcks(t *testing.T) {
	h := newHarness(t)
	h.publish(command(1, "welcome"), command(2, "welcome"))
	cfg := testConfig()
	cfg.DryRun = true
	h.start(cfg)
	h.eventually(10*time.Second, "both acked", func() bool { return h.allAcked(2) })
	// The server has the ack before the runtime reports the settlement.
	h.eventually(5*time.Second, "both counted", func() bool { return h.metric("sink_triggers_total", "outcome", "dry_run") == 2 })
	if h.fake.Calls() != 0 {
		t.Errorf("Novu saw %d calls in a dry run, want 0", h.fake.Calls())
	}
	var logged int
	for _, r := range h.logs.at(slog.LevelInfo) {
		if strings.Contains(r.Message, "dry run") {
			logged++
		}
	}
	if logged != 2 {
		t.Errorf("logged %d dry-run lines, want 2", logged)
	}
	if got := h.metric("sink_triggers_total", "outcome", "dry_run"); got != 2 {
		t.Errorf("sink_triggers_total{dry_run} = %v, want 2", got)
	}
}

func TestNewRequiresNotifierUnlessDryRun(t *testing.T) {
	_, err := New(Config{}, Deps{Publisher: nopPublisher{}})
	if err == nil || !strings.Contains(err.Error(), "no Novu client") {
		t.Errorf("New without a notifier = %v, want ErrMisconfigured", err)
	}
	if _, err := New(Config{DryRun: true}, Deps{Publisher: nopPublisher{}}); err != nil {
		t.Errorf("New dry run = %v, want nil", err)
	}
	if _, err := New(Config{DryRun: true}, Deps{}); err == nil {
		t.Errorf("New without a publisher = nil, want an error")
	}
}

type nopPublisher struct{}

func (nopPublisher) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return &jetstream.PubAck{}, nil
}

// Messages waiting in hand longer than the ack wait (here: bulk calls queued
// behind the rate limit) are kept alive with InProgress, so none is
// redelivered and sent twice.
func TestLongWaitsKeepMessagesInProgress(t *testing.T) {
	h := newHarness(t)
	const n = 300
	cmds := commands(n, "welcome")
	h.publish(cmds...)
	cfg := testConfig()
	cfg.Bulk = true
	cfg.RateLimit = 100 // one bulk call a second: the third waits 2s
	cfg.AckWait = 500 * time.Millisecond
	h.start(cfg)

	h.eventually(15*time.Second, "the backlog delivered", func() bool { return h.allAcked(n) })
	if d := h.fake.Duplicates(); len(d) != 0 {
		t.Errorf("%d transactions sent twice: messages were redelivered while waiting in hand", len(d))
	}
	if info := h.consumerInfo(); info.NumRedelivered != 0 || info.Delivered.Consumer != n {
		t.Errorf("consumer delivered %d times (%d redelivered), want each of the %d messages once", info.Delivered.Consumer, info.NumRedelivered, n)
	}
}

// A dead letter replayed once its cause is fixed (the workflow created in
// Novu) is delivered: Novu's cached 422 for the reused Idempotency-Key is
// stale, so the sink retries with a fresh key instead of dead-lettering again.
func TestReplayedDeadLetterGetsAFreshAnswer(t *testing.T) {
	h := newHarness(t, novufake.WithIdempotency(), novufake.WithWorkflow("later", novufake.WorkflowNotFound()))
	c := command(1, "later")
	h.publish(c)
	h.start(testConfig())
	h.eventually(10*time.Second, "the first dead letter", func() bool { return len(h.dlq()) == 1 })

	h.fake.SetWorkflow("later", novufake.Response{}) // the workflow now exists
	replay := commandMsg(t, c)
	replay.Header.Del(jetstream.MsgIDHeader) // as `nats pub` republishes the dead letter's body
	if _, err := h.js.PublishMsg(t.Context(), replay); err != nil {
		t.Fatalf("replay: %v", err)
	}
	h.eventually(10*time.Second, "the replay delivered", func() bool { return h.fake.Count(c.TransactionID) == 1 })
	h.eventually(5*time.Second, "both messages acked", func() bool { return h.allAcked(2) })
	if n := len(h.dlq()); n != 1 {
		t.Errorf("DLQ holds %d messages, want only the first", n)
	}
	var keys []string
	for _, s := range h.fake.ByTransactionID(c.TransactionID) {
		keys = append(keys, s.IdempotencyKey)
	}
	want := []string{c.TransactionID, c.TransactionID, novu.IdempotencyKey(c.TransactionID, 1)}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("Idempotency-Keys sent = %v, want %v (422, replayed 422, fresh key)", keys, want)
	}
}

// An outage (a refused key) uses no deliveries: the message is held in
// hand, so the first transient error after the outage is retried, not
// dead-lettered.
func TestOutageDeliveriesAreNotHeldAgainstTheMessage(t *testing.T) {
	var calls atomic.Int64
	h := newHarness(t, novufake.WithHook(func(novufake.Call) *novufake.Response {
		switch n := calls.Add(1); {
		case n <= 3:
			return &novufake.Response{StatusCode: 401, Message: "Unauthorized"}
		case n == 4:
			r := novufake.Unavailable(0)
			return &r
		}
		return nil
	}))
	c := command(1, "welcome")
	h.publish(c)
	cfg := testConfig()
	cfg.MaxDeliver = 3
	h.start(cfg)

	h.eventually(15*time.Second, "delivery after the outage", func() bool { return h.fake.Count(c.TransactionID) == 1 })
	h.eventually(5*time.Second, "the message acked", func() bool { return h.allAcked(1) })
	if n := len(h.dlq()); n != 0 {
		t.Errorf("DLQ holds %d messages, want none: the outage is not the message's fault", n)
	}
	// The 401s held the message in hand: one delivery for them and the 503,
	// one for the delivery, at most one more held back as the probe.
	if info := h.consumerInfo(); info.Delivered.Consumer > 3 {
		t.Errorf("delivered %d times, want at most 3: the outage used deliveries", info.Delivered.Consumer)
	}
}
