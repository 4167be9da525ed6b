package consume

import (
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
)

// Retry-After is a floor: after a 429 with Retry-After: 1, no call reaches
// Novu within the second, not even the calls that were already waiting for
// a rate-limit token when the 429 arrived.
func TestRetryAfterIsAFloor(t *testing.T) {
	const n, limitedAt = 120, 110
	h := newHarness(t, novufake.WithHook(func(c novufake.Call) *novufake.Response {
		if c.Seq == limitedAt {
			r := novufake.TooManyRequests(time.Second)
			return &r
		}
		return nil
	}))
	cmds := commands(n, "welcome")
	h.publish(cmds...)
	cfg := testConfig()
	cfg.RateLimit = 10 // past the burst (100 tokens) one call every 100 ms, the others wait for a token
	cfg.RetryMax = 2 * time.Second
	h.start(cfg)

	h.eventually(20*time.Second, "every command delivered", func() bool { return h.allAcked(n) })
	var limited time.Time
	for _, tr := range h.fake.Triggers() {
		if tr.StatusCode == 429 {
			limited = tr.Received
		}
	}
	if limited.IsZero() {
		t.Fatalf("the fake answered no 429")
	}
	// A call sent before the sink read the 429 lands within a few
	// milliseconds of it; the next token was due 100 ms later.
	inFlight := limited.Add(30 * time.Millisecond)
	for _, tr := range h.fake.Triggers() {
		if tr.Received.After(inFlight) && tr.Received.Before(limited.Add(time.Second)) {
			t.Errorf("call %d reached Novu %v after the 429 with Retry-After: 1", tr.Call, tr.Received.Sub(limited))
		}
	}
}

// One command Novu keeps answering 500 (while it accepts the others) is
// isolated by its own backoff: it does not hold the breaker open by being
// the half-open probe again and again, and each good command waits at most
// one open period.
func TestPoisonCommandDelaysGoodOnesAtMostOneOpenPeriod(t *testing.T) {
	h := newHarness(t, novufake.WithWorkflow("poison", novufake.Response{StatusCode: 500, Message: "Internal server error"}))
	cfg := testConfig()
	cfg.BreakerFailures = 1 // the poison's first failure opens the breaker
	cfg.BreakerOpen = time.Second
	h.publish(command(0, "poison"))
	h.start(cfg)
	h.eventually(10*time.Second, "the poison sent", func() bool { return h.fake.Calls() >= 1 })

	const slack = time.Second // scheduling on a loaded machine
	for i := 1; i <= 3; i++ {
		c := command(i, "welcome")
		published := time.Now()
		h.publish(c)
		h.eventually(10*time.Second, "good command "+c.SvixID+" delivered", func() bool { return h.fake.Count(c.TransactionID) == 1 })
		if waited := time.Since(published); waited > cfg.BreakerOpen+slack {
			t.Errorf("good command %d waited %v behind the poison, want at most one open period (%v)", i, waited, cfg.BreakerOpen)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ holds %d messages, want 0 (the poison has deliveries left)", len(d))
	}
}

// A bulk call Novu refuses as a whole (413: one event is too large) is split:
// its events go one by one, and only the one Novu refuses alone is
// dead-lettered.
func TestBulkRefusedAsAWholeIsSplit(t *testing.T) {
	const maxBody = 64 << 10
	h := newHarness(t, novufake.WithMaxBody(maxBody))
	const n = 60
	cmds := commands(n, "welcome")
	big := &cmds[7]
	big.Payload = json.RawMessage(`{"blob":"` + strings.Repeat("x", maxBody) + `"}`)
	h.publish(cmds...)
	cfg := testConfig()
	cfg.Bulk = true
	cfg.BulkMin = 10
	h.start(cfg)

	h.eventually(15*time.Second, "every command settled", func() bool { return h.allAcked(n) })
	dl := h.dlq()
	if len(dl) != 1 {
		t.Fatalf("DLQ holds %d messages, want 1 (the oversize command)", len(dl))
	}
	if got := header(dl[0], events.TransactionIDHeader); got != big.TransactionID {
		t.Errorf("dead letter is %s, want the oversize command %s", got, big.TransactionID)
	}
	if got := header(dl[0], events.DLQReasonHeader); !strings.HasPrefix(got, "novu 413") {
		t.Errorf("dead letter reason = %q, want novu 413", got)
	}
	if calls := h.fake.Calls(); calls <= n {
		t.Errorf("Novu saw %d calls for %d commands: no bulk call was made", calls, n)
	}
	for _, c := range cmds {
		want := 1
		if c.TransactionID == big.TransactionID {
			want = 0
		}
		if got := h.fake.Count(c.TransactionID); got != want {
			t.Errorf("transaction %s accepted %d times, want %d", c.TransactionID, got, want)
		}
	}
}

// A 429 storm longer than NOVU_MAX_DELIVER × the longest backoff
// dead-letters nothing: back-pressure is not the message's fault. Every
// command is delivered once after it.
func TestRateLimitStormUsesNoDeliveries(t *testing.T) {
	var storm atomic.Bool
	storm.Store(true)
	h := newHarness(t, novufake.WithHook(func(novufake.Call) *novufake.Response {
		if storm.Load() {
			r := novufake.TooManyRequests(time.Second)
			return &r
		}
		return nil
	}))
	const n = 4
	cmds := commands(n, "welcome")
	h.publish(cmds...)
	cfg := testConfig()
	cfg.MaxDeliver = 3
	cfg.RetryMax = 200 * time.Millisecond // caps Retry-After: many tries within the storm
	h.start(cfg)

	// Longer than MaxDeliver × RetryMax (600 ms) several times over.
	h.eventually(10*time.Second, "the storm to last", func() bool {
		return h.fake.Calls() >= int64(2*n*cfg.MaxDeliver) || len(h.dlq()) > 0
	})
	storm.Store(false)
	h.eventually(15*time.Second, "every command delivered after the storm", func() bool { return h.allAcked(n) })
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("DLQ holds %d messages after a 429 storm, want 0; first reason %q", len(d), header(d[0], events.DLQReasonHeader))
	}
	for _, c := range cmds {
		if got := h.fake.Count(c.TransactionID); got != 1 {
			t.Errorf("transaction %s accepted %d times, want 1", c.TransactionID, got)
		}
	}
}

// The dry run keeps personal data (email, phone, names) out of info logs; it
// is logged at debug level only.
func TestDryRunLogsPersonalDataOnlyAtDebug(t *testing.T) {
	h := newHarness(t)
	c := command(1, "welcome")
	c.To.Subscriber.Email, c.To.Subscriber.Phone = "jane@example.com", "+15550100"
	c.To.Subscriber.FirstName, c.To.Subscriber.LastName = "Jane", "Doe"
	h.publish(c)
	cfg := testConfig()
	cfg.DryRun = true
	h.start(cfg)
	h.eventually(10*time.Second, "acked", func() bool { return h.allAcked(1) })

	render := func(level slog.Level) string {
		var b strings.Builder
		for _, r := range h.logs.at(level) {
			b.WriteString(r.Message)
			r.Attrs(func(a slog.Attr) bool {
				b.WriteString(" " + a.String())
				return true
			})
			b.WriteString("\n")
		}
		return b.String()
	}
	info := render(slog.LevelInfo)
	for _, want := range []string{c.WorkflowID, c.TransactionID, c.SvixID, c.To.Subscriber.SubscriberID} {
		if !strings.Contains(info, want) {
			t.Errorf("info log lacks %q:\n%s", want, info)
		}
	}
	for _, secret := range []string{"jane@example.com", "+15550100", "Jane", "Doe"} {
		if strings.Contains(info, secret) {
			t.Errorf("info log holds personal data %q:\n%s", secret, info)
		}
	}
	if debug := render(slog.LevelDebug); !strings.Contains(debug, "jane@example.com") {
		t.Errorf("debug log lacks the subscriber:\n%s", debug)
	}
}

// A command that fits in stream NOVU but whose dead letter does not fit the
// server's max_payload ends after one call to Novu, dead-lettered once with a
// truncated body and a pointer to the source: it is not re-POSTed on every try.
func TestOversizeDeadLetterEndsTheMessage(t *testing.T) {
	h := newHarness(t, novufake.WithWorkflow("missing", novufake.WorkflowNotFound()))
	c := command(1, "missing")
	msg := commandMsg(t, c)
	headers := 0
	for k, vs := range msg.Header {
		for _, v := range vs {
			headers += len(k) + len(v) + 4
		}
	}
	// Leave 300 bytes of headroom: enough for the command, not for the
	// dead letter's headers (reason, Novu's answer, source, times).
	room := int(h.nc.MaxPayload()) - len(msg.Data) - headers - 16 - 300
	c.Payload = json.RawMessage(`{"blob":"` + strings.Repeat("x", room) + `"}`)
	h.publish(c)
	h.start(testConfig())

	h.eventually(10*time.Second, "the command settled", func() bool { return h.allAcked(1) })
	time.Sleep(500 * time.Millisecond) // more than the longest backoff of testConfig
	if got := len(h.fake.ByTransactionID(c.TransactionID)); got != 1 {
		t.Errorf("Novu saw the command %d times, want 1", got)
	}
	if info := h.consumerInfo(); info.NumRedelivered != 0 || info.Delivered.Consumer != 1 {
		t.Errorf("consumer delivered %d times (%d redelivered), want once", info.Delivered.Consumer, info.NumRedelivered)
	}
	dl := h.dlq()
	if len(dl) != 1 {
		t.Fatalf("DLQ holds %d messages, want 1 truncated dead letter", len(dl))
	}
	if header(dl[0], events.DLQTruncatedHeader) == "" || header(dl[0], events.DLQSourceSequenceHeader) != "1" ||
		header(dl[0], events.DLQSourceStreamHeader) != events.StreamNovu || !strings.Contains(header(dl[0], events.DLQReasonHeader), "workflow_not_found") {
		t.Errorf("dead letter headers = %v, want it truncated, pointing at NOVU 1, with Novu's reason", dl[0].Header)
	}
}
