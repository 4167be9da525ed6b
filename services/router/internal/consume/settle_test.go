package consume

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// consumerInfo returns the router consumer's state.
func consumerInfo(t *testing.T, js jetstream.JetStream) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(t.Context(), events.StreamClerk, events.DurableRouter)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

// A signed event that fits the server (and so the receiver's cap) but whose
// command does not: "maximum payload exceeded" is permanent, so the event is
// dead-lettered once, with a dead letter cut to fit and a pointer to the
// event, and never redelivered.
func TestCommandOverMaxPayloadIsDeadLetteredOnceTruncated(t *testing.T) {
	const maxPayload = 64 << 10
	s := eventstest.RunServerWith(t, func(o *server.Options) { o.MaxPayload = maxPayload })
	nc, js := eventstest.Connect(t, s.ClientURL())
	terminated := eventstest.Terminations(t, nc)
	m := NewMetrics()
	start(t, js, NewHandler(fastConfig(), js, rules(t, ""), WithMetrics(m)), 2)

	var ev map[string]any
	if err := json.Unmarshal(fixture(t, "user.created"), &ev); err != nil {
		t.Fatal(err)
	}
	data := ev["data"].(map[string]any)
	data["unsafe_metadata"] = map[string]any{"blob": ""}
	small, _ := json.Marshal(ev)
	const sourceHeaders = 120 // Nats-Msg-Id, Svix-Id, Event-Type, Received-At
	data["unsafe_metadata"] = map[string]any{"blob": strings.Repeat("x", maxPayload-sourceHeaders-len(small)-60)}
	body, _ := json.Marshal(ev)
	publishEvent(t, js, "user.created", "msg_huge", body, nil) // stored: the event itself fits

	eventstest.Eventually(t, waitFor, "the dead letter and the termination", func() bool {
		return len(terminated()) == 1 && count(js, t, events.StreamDLQ, ">")()
	})
	dls := eventstest.StreamMsgs(t, js, events.StreamDLQ, ">")
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	d := dls[0]
	if r := d.Header.Get(events.DLQReasonHeader); !strings.Contains(r, "maximum payload exceeded") {
		t.Errorf("reason %q, want maximum payload exceeded", r)
	}
	for k, want := range map[string]string{
		events.DLQTruncatedHeader:      strconv.Itoa(len(body)),
		events.DLQSourceStreamHeader:   events.StreamClerk,
		events.DLQSourceSequenceHeader: "1",
		events.DLQSourceSubjectHeader:  "clerk.user.created",
		events.SvixIDHeader:            "msg_huge",
	} {
		if v := d.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if len(d.Data) == 0 || len(d.Data) >= len(body) || string(d.Data) != string(body[:len(d.Data)]) {
		t.Errorf("dead letter body %d bytes, want a cut prefix of the %d-byte event", len(d.Data), len(body))
	}
	time.Sleep(200 * time.Millisecond) // a redelivery would come within the 10-100 ms backoff
	if ci := consumerInfo(t, js); ci.Delivered.Consumer != 1 || ci.NumAckPending != 0 {
		t.Errorf("delivered %d times (%d pending), want once and settled", ci.Delivered.Consumer, ci.NumAckPending)
	}
	if n := len(eventstest.StreamMsgs(t, js, events.StreamNovu, ">")); n != 0 {
		t.Errorf("%d commands, want none", n)
	}
	if v := testutil.ToFloat64(m.Events.WithLabelValues("user.created", OutcomeDeadLettered)); v != 1 {
		t.Errorf("dead_lettered = %v, want 1", v)
	}
}

// An event the router keeps failing on stops at MaxDeliver: dead-lettered
// and terminated (a MSG_TERMINATED advisory), not acked as if delivered.
func TestKeptFailingStopsAtMaxDeliverTerminated(t *testing.T) {
	s := eventstest.RunServer(t)
	nc, js := eventstest.Connect(t, s.ClientURL())
	terminated := eventstest.Terminations(t, nc)
	deleteStream(t, js, events.StreamNovu)
	cfg := fastConfig()
	cfg.MaxDeliver = 3
	start(t, js, NewHandler(cfg, js, rules(t, "")), 1)
	publishEvent(t, js, "user.created", "msg_poison", fixture(t, "user.created"), nil)

	eventstest.Eventually(t, waitFor, "dead letter and termination", func() bool {
		return len(terminated()) == 1 && count(js, t, events.StreamDLQ, ">")()
	})
	if seq := terminated()[0]; seq != 1 {
		t.Errorf("terminated sequence %d, want 1", seq)
	}
	time.Sleep(200 * time.Millisecond)
	if ci := consumerInfo(t, js); ci.Delivered.Consumer != 3 {
		t.Errorf("delivered %d times, want 3 (MaxDeliver)", ci.Delivered.Consumer)
	}
	if n := len(eventstest.StreamMsgs(t, js, events.StreamDLQ, ">")); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

func TestTypeLabelIsBoundedToTheCatalog(t *testing.T) {
	tests := []struct{ typ, want string }{
		{"user.created", "user.created"},
		{"paymentAttempt.updated", "paymentAttempt.updated"},
		{"made.up.type", OtherType},
		{"", OtherType},
	}
	for _, tt := range tests {
		if got := typeLabel(tt.typ); got != tt.want {
			t.Errorf("typeLabel(%q) = %q, want %q", tt.typ, got, tt.want)
		}
	}
}

// A flood of made-up types adds one series, not one per type.
func TestUnknownTypesShareOneSeries(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	m := NewMetrics()
	start(t, js, NewHandler(fastConfig(), js, rules(t, ""), WithMetrics(m)), 4)
	const n = 30
	for i := range n {
		publishEvent(t, js, "flood"+strconv.Itoa(i)+".created", "msg_flood_"+strconv.Itoa(i),
			[]byte(`{"type":"flood.created","object":"event","data":{}}`), nil)
	}
	eventstest.Eventually(t, waitFor, "every event settled", settled(t, js))
	if got := testutil.CollectAndCount(m.Events); got > 2 {
		t.Errorf("%d router_events_total series for %d made-up types, want at most 2 (other × outcome)", got, n)
	}
}
