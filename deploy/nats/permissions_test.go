package natsconf

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/services/novu-sink/novufake"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The whole pipeline runs with each service under its own user from
// accounts.conf: a webhook becomes a Novu trigger, a routed event without a
// recipient and a trigger Novu refuses become dead letters.
func TestPipelineUnderLeastPrivilege(t *testing.T) {
	s := runServer(t, loadConfig(t))
	provisionAsAdmin(t, s.ClientURL(), 1)
	st, fake := startPipeline(t, s.ClientURL(), nil)
	fake.SetWorkflow("recent-login-v2", novufake.WorkflowNotFound())

	client := &http.Client{Timeout: 10 * time.Second}
	for _, name := range []string{"user.created", "session.created", "session.created/no-user"} {
		smp, ok := samples.Get(name)
		if !ok {
			t.Fatalf("no sample %s", name)
		}
		code, _, err := post(t, client, st, samples.NewSvixID(), smp.Body)
		if err != nil || code != http.StatusOK {
			t.Fatalf("post %s: %d, %v; want 200", name, code, err)
		}
	}
	admin := connectAs(t, s.ClientURL(), "admin")
	js, _ := jetstream.New(admin)
	eventstest.Eventually(t, 15*time.Second, "user-created at Novu and a dead letter from each of router and sink", func() bool {
		accepted := fake.Accepted()
		return len(accepted) == 1 && accepted[0].Name == "user-created" &&
			len(eventstest.StreamMsgs(t, js, events.StreamDLQ, events.DLQSubjectPrefix+events.StageRouter+".>")) == 1 &&
			len(eventstest.StreamMsgs(t, js, events.StreamDLQ, events.DLQSubjectPrefix+events.StageSink+".>")) == 1
	})
}

// Each user is refused what belongs to another service: publishing into
// another stream, reading a stream's subjects, another service's inbox, a
// JetStream API call it does not make.
func TestServicesAreRefusedOthersSubjects(t *testing.T) {
	s := runServer(t, loadConfig(t))
	provisionAsAdmin(t, s.ClientURL(), 1)

	tests := []struct {
		user, what string
		try        func(t *testing.T, nc *nats.Conn, js jetstream.JetStream) error
	}{
		{"receiver", "publish a trigger command", func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) error {
			return publish(t, js, "novu.trigger.user-created")
		}},
		{"receiver", "publish a dead letter", func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) error {
			return publish(t, js, "dlq.router.user.created")
		}},
		{"receiver", "read the router's inbox", func(_ *testing.T, nc *nats.Conn, _ jetstream.JetStream) error {
			return subscribe(nc, inboxPrefix("router")+".>")
		}},
		{"receiver", "read the default inbox", func(_ *testing.T, nc *nats.Conn, _ jetstream.JetStream) error {
			return subscribe(nc, "_INBOX.>")
		}},
		{"receiver", "tap clerk events", func(_ *testing.T, nc *nats.Conn, _ jetstream.JetStream) error {
			return subscribe(nc, "clerk.>")
		}},
		{"receiver", "delete a stream", func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) error {
			return js.DeleteStream(ctx(t), events.StreamClerk)
		}},
		{"router", "publish a Clerk event", func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) error {
			return publish(t, js, "clerk.user.created")
		}},
		{"router", "pull the sink's consumer", func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) error {
			return fetch(t, js, events.StreamNovu, events.DurableSink)
		}},
		{"router", "publish a sink dead letter", func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) error {
			return publish(t, js, "dlq.sink.user-created")
		}},
		{"router", "read the sink's inbox", func(_ *testing.T, nc *nats.Conn, _ jetstream.JetStream) error {
			return subscribe(nc, inboxPrefix("novu-sink")+".>")
		}},
		{"novu-sink", "publish a trigger command", func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) error {
			return publish(t, js, "novu.trigger.user-created")
		}},
		{"novu-sink", "pull the router's consumer", func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) error {
			return fetch(t, js, events.StreamClerk, events.DurableRouter)
		}},
		{"novu-sink", "change the routes", func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) error {
			return publish(t, js, "$KV."+routesBucket+".rules")
		}},
		{"novu-sink", "create a consumer", func(t *testing.T, _ *nats.Conn, js jetstream.JetStream) error {
			_, err := js.CreateOrUpdateConsumer(ctx(t), events.StreamNovu, jetstream.ConsumerConfig{Durable: "tap"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.user+" may not "+tt.what, func(t *testing.T) {
			perm := make(chan error, 4)
			nc := connectAs(t, s.ClientURL(), tt.user, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				perm <- err
			}))
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.try(t, nc, js)
			if !isPermissionViolation(err) { // a refused publish is reported asynchronously
				select {
				case err = <-perm:
				case <-time.After(2 * time.Second):
				}
			}
			if !isPermissionViolation(err) {
				t.Fatalf("err = %v, want a permissions violation", err)
			}
		})
	}
}

func isPermissionViolation(err error) bool {
	return err != nil && (errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(err.Error(), "Permissions Violation"))
}

// ctx bounds one try: a refused request goes unanswered, and the refusal
// arrives as an asynchronous error.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 250*time.Millisecond)
	t.Cleanup(cancel)
	return c
}

func publish(t *testing.T, js jetstream.JetStream, subject string) error {
	_, err := js.Publish(ctx(t), subject, []byte(`{}`))
	return err
}

func fetch(t *testing.T, js jetstream.JetStream, stream, durable string) error {
	cons, err := js.Consumer(ctx(t), stream, durable)
	if err != nil {
		return err
	}
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		return err
	}
	for range b.Messages() {
	}
	return b.Error()
}

func subscribe(nc *nats.Conn, subject string) error {
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		return err
	}
	return nc.LastError()
}
