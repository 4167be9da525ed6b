package stack_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
)

// A command the router published (with its JetStream headers) that Novu
// refuses for good lands in the DLQ from the sink, with the reason, after
// exactly one call to Novu.
func TestSinkDeadLettersARouterCommand(t *testing.T) {
	st, fake, _ := startStack(t)
	fake.SetWorkflow("user-created", novufake.WorkflowNotFound())
	_, js := eventstest.Connect(t, st.NATSURL)

	s, ok := samples.Get("user.created")
	if !ok {
		t.Fatal("no user.created sample")
	}
	svixID := samples.NewSvixID()
	if code := post(t, st, svixID, s.Body, nil); code != 200 {
		t.Fatalf("webhook answered %d, want 200", code)
	}
	var dead []string
	eventstest.Eventually(t, 10*time.Second, "a dead letter on dlq.sink.user-created", func() bool {
		msgs := eventstest.StreamMsgs(t, js, events.StreamDLQ, events.DLQSubject(events.StageSink, "user-created"))
		dead = dead[:0]
		for _, m := range msgs {
			dead = append(dead, m.Header.Get(events.DLQReasonHeader)+" status="+m.Header.Get(events.DLQHTTPStatusHeader)+" svix="+m.Header.Get(events.SvixIDHeader))
		}
		return len(msgs) > 0
	})
	if len(dead) != 1 || !strings.Contains(dead[0], "workflow_not_found") || !strings.Contains(dead[0], "status=422") || !strings.Contains(dead[0], "svix="+svixID) {
		t.Fatalf("dead letters = %q, want one naming workflow_not_found, status 422 and the svix-id", dead)
	}
	eventstest.Eventually(t, 5*time.Second, "the NOVU consumer settles", func() bool {
		return idle(t, js, events.StreamNovu, events.DurableSink)
	})
	if n := fake.Calls(); n != 1 {
		t.Errorf("Novu got %d calls, want 1: a 422 is not retried", n)
	}
}
