package consume

import (
	"strings"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const syncDoc = "sync:\n  subscribers: true\n  organizationTopics: \"org-{organization_id}\"\nrules: []\n"

// TestSyncCommandsPublished: with sync in the rules, the router stores the
// sync commands next to the triggers, before acking, once per svix-id; an
// event no rule routes but that is synced (user.deleted) is still handled.
func TestSyncCommandsPublished(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	m := NewMetrics()
	h := NewHandler(fastConfig(), js, rules(t, syncDoc), WithMetrics(m))
	start(t, js, h, 2)

	publishEvent(t, js, "user.created", "msg_sync_1", fixture(t, "user.created"), nil)
	publishEvent(t, js, "user.created", "msg_sync_1b", fixture(t, "user.created"), nil) // a second delivery of the same event under another id
	publishEvent(t, js, "user.deleted", "msg_sync_2", fixture(t, "user.deleted"), nil)
	publishEvent(t, js, "organizationMembership.created", "msg_sync_3", fixture(t, "organizationMembership.created"), nil)
	eventstest.Eventually(t, waitFor, "every event handled", func() bool {
		return settled(t, js)() && len(eventstest.StreamMsgs(t, js, events.StreamNovu, events.NovuSyncSubjectsAll)) == 4
	})
	if n := len(eventstest.StreamMsgs(t, js, events.StreamNovu, events.NovuTriggerSubjectsAll)); n != 2 {
		t.Errorf("%d trigger commands, want 2 (the defaults' user-created, twice)", n)
	}
	want := map[string]string{
		"novu.sync.subscriber.upsert": "",
		"novu.sync.subscriber.delete": "",
		"novu.sync.topic.add":         "",
	}
	for _, msg := range eventstest.StreamMsgs(t, js, events.StreamNovu, events.NovuSyncSubjectsAll) {
		if _, ok := want[msg.Subject]; !ok {
			t.Errorf("unexpected subject %s", msg.Subject)
		}
		cmd, err := events.ParseSyncCommand(msg.Data)
		if err != nil {
			t.Fatalf("%s: %v", msg.Subject, err)
		}
		if msg.Header.Get(jetstream.MsgIDHeader) != cmd.ID || msg.Header.Get(events.SvixIDHeader) != cmd.SvixID {
			t.Errorf("%s: headers %v, command %+v", msg.Subject, msg.Header, cmd)
		}
		if cmd.Kind == events.SyncTopicAdd && cmd.TopicKey != "org-org_Oq9wMxEhh2FDEEtfjgVvVqE1SkH" {
			t.Errorf("topic key = %q", cmd.TopicKey)
		}
	}
	if n := testutil.ToFloat64(m.Events.WithLabelValues("user.deleted", OutcomeRouted)); n != 1 {
		t.Errorf("user.deleted routed %v times, want 1 (synced although no rule triggers on it)", n)
	}

	// A redelivered event (same svix-id) publishes the same ids: NOVU keeps one.
	publishEvent(t, js, "user.deleted", "msg_sync_2", fixture(t, "user.deleted"), nil)
	eventstest.Eventually(t, waitFor, "the repeat handled", settled(t, js))
	if n := len(eventstest.StreamMsgs(t, js, events.StreamNovu, events.NovuSyncSubjectsAll)); n != 4 {
		t.Errorf("%d sync commands after a repeat, want 4", n)
	}
}

// TestSyncOffByDefault: without sync in the rules, nothing but triggers.
func TestSyncOffByDefault(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	m := NewMetrics()
	h := NewHandler(fastConfig(), js, rules(t, ""), WithMetrics(m))
	start(t, js, h, 2)
	publishEvent(t, js, "user.deleted", "msg_off_1", fixture(t, "user.deleted"), nil)
	eventstest.Eventually(t, waitFor, "handled", func() bool {
		return testutil.ToFloat64(m.Events.WithLabelValues("user.deleted", OutcomeSkipped)) == 1
	})
	if n := len(eventstest.StreamMsgs(t, js, events.StreamNovu, ">")); n != 0 {
		t.Errorf("%d commands, want none", n)
	}
}

// TestExpressionFailureDeadLetters: a when that fails at run time
// dead-letters the event with the rule's position.
func TestExpressionFailureDeadLetters(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	h := NewHandler(fastConfig(), js, rules(t, "rules:\n  - match: user.created\n    when: \"data.first_name > 3\"\n    workflows: [w]\n"))
	start(t, js, h, 1)
	publishEvent(t, js, "user.created", "msg_expr_1", fixture(t, "user.created"), nil)
	eventstest.Eventually(t, waitFor, "dead-lettered", count(js, t, events.StreamDLQ, ">"))
	dl := eventstest.StreamMsgs(t, js, events.StreamDLQ, ">")[0]
	if r := dl.Header.Get(events.DLQReasonHeader); !strings.Contains(r, `test: rule 1 (line 2, match "user.created"): when "data.first_name > 3"`) {
		t.Errorf("reason = %q", r)
	}
}
