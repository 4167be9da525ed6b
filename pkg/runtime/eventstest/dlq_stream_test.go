package eventstest_test

import (
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A dead letter of a message stored with JetStream control headers (the
// router publishes commands expecting stream NOVU) must still be stored in
// DLQ: the control headers are the source stream's, not the DLQ's.
func TestDeadLetterMsgDropsControlHeaders(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	src := nats.Header{}
	src.Set("Nats-Expected-Stream", events.StreamNovu)
	src.Set(jetstream.MsgIDHeader, "txn_1")
	src.Set(events.SvixIDHeader, "msg_1")
	msg := events.DeadLetter{Stage: events.StageSink, Suffix: "user-created", Reason: "novu 422: workflow_not_found"}.Msg([]byte(`{}`), src)
	if got := msg.Header.Get("Nats-Expected-Stream"); got != "" {
		t.Errorf("Nats-Expected-Stream = %q, want it dropped", got)
	}
	if got := msg.Header.Get(events.SvixIDHeader); got != "msg_1" {
		t.Errorf("Svix-Id = %q, want it kept", got)
	}
	if _, err := js.PublishMsg(t.Context(), msg, jetstream.WithExpectStream(events.StreamDLQ)); err != nil {
		t.Fatalf("publish the dead letter to DLQ: %v", err)
	}
}
