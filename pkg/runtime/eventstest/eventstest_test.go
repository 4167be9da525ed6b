package eventstest

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRunServerCreatesStreams(t *testing.T) {
	var s *server.Server
	t.Run("server", func(t *testing.T) {
		s = RunServer(t, events.WithDuplicateWindow(time.Hour))
		_, js := Connect(t, s.ClientURL())
		ctx := t.Context()
		var got []string
		for name := range js.StreamNames(ctx).Name() {
			got = append(got, name)
		}
		slices.Sort(got)
		if want := []string{events.StreamClerk, events.StreamDLQ, events.StreamNovu}; !slices.Equal(got, want) {
			t.Fatalf("streams %q, want %q", got, want)
		}
		for _, want := range events.StreamConfigs(events.WithDuplicateWindow(time.Hour)) {
			st, err := js.Stream(ctx, want.Name)
			if err != nil {
				t.Fatal(err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c := info.Config
			if !slices.Equal(c.Subjects, want.Subjects) || c.Duplicates != want.Duplicates || c.MaxAge != want.MaxAge || c.Storage != want.Storage {
				t.Errorf("%s: subjects %q duplicates %v max age %v storage %v, want %q %v %v %v",
					want.Name, c.Subjects, c.Duplicates, c.MaxAge, c.Storage, want.Subjects, want.Duplicates, want.MaxAge, want.Storage)
			}
		}
		if c := events.ClerkStream(events.WithDuplicateWindow(time.Hour)); c.Duplicates != time.Hour {
			t.Fatalf("option not applied: %v", c.Duplicates)
		}
	})
	if s.Running() {
		t.Error("the server still runs after its test ended")
	}
}

func TestDuplicateMsgIDStoredOnce(t *testing.T) {
	_, js := RunJetStream(t)
	ctx := t.Context()
	s, _ := samples.Get("user.created")
	subject, err := events.ClerkSubject(s.Type)
	if err != nil {
		t.Fatal(err)
	}
	svixID := samples.NewSvixID()
	publish := func() *jetstream.PubAck {
		t.Helper()
		msg := nats.NewMsg(subject)
		msg.Data = s.Body
		msg.Header.Set(jetstream.MsgIDHeader, svixID)
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		return ack
	}
	first, second := publish(), publish()
	if first.Duplicate || !second.Duplicate {
		t.Errorf("duplicate flags %v then %v, want false then true", first.Duplicate, second.Duplicate)
	}
	if second.Sequence != first.Sequence {
		t.Errorf("second ack names sequence %d, want the first's %d", second.Sequence, first.Sequence)
	}
	msgs := StreamMsgs(t, js, events.StreamClerk, events.ClerkSubjectsAll)
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	if string(msgs[0].Data) != string(s.Body) || msgs[0].Subject != "clerk.user.created" {
		t.Errorf("stored %s %.40s", msgs[0].Subject, msgs[0].Data)
	}

	// A dead letter published twice (its source's ack lost) is stored once too.
	src := nats.Header{jetstream.MsgIDHeader: {svixID}}
	for range 2 {
		dl := events.DeadLetter{Stage: events.StageRouter, Suffix: s.Type, Reason: "no route", SourceSubject: subject, SourceSequence: first.Sequence}.Msg(s.Body, src)
		if _, err := js.PublishMsg(ctx, dl); err != nil {
			t.Fatalf("publish dead letter: %v", err)
		}
	}
	if n := len(StreamMsgs(t, js, events.StreamDLQ, "dlq.router.>")); n != 1 {
		t.Errorf("%d dead letters stored, want 1", n)
	}
}

func TestStreamMsgsFilter(t *testing.T) {
	_, js := RunJetStream(t)
	ctx := t.Context()
	for _, subj := range []string{"clerk.user.created", "clerk.session.created", "clerk.user.updated"} {
		if _, err := js.Publish(ctx, subj, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		filter string
		want   []string
	}{
		{filter: "", want: []string{"clerk.user.created", "clerk.session.created", "clerk.user.updated"}},
		{filter: "clerk.>", want: []string{"clerk.user.created", "clerk.session.created", "clerk.user.updated"}},
		{filter: "clerk.user.*", want: []string{"clerk.user.created", "clerk.user.updated"}},
		{filter: "clerk.*.created", want: []string{"clerk.user.created", "clerk.session.created"}},
		{filter: "clerk.session.created", want: []string{"clerk.session.created"}},
		{filter: "clerk.role.>", want: nil},
	}
	for _, tt := range tests {
		var got []string
		for _, m := range StreamMsgs(t, js, events.StreamClerk, tt.filter) {
			got = append(got, m.Subject)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("StreamMsgs(%q) = %q, want %q", tt.filter, got, tt.want)
		}
	}
}

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		filter, subject string
		want            bool
	}{
		{"clerk.>", "clerk.user.created", true},
		{"clerk.>", "clerk", false},
		{"clerk.*", "clerk.user", true},
		{"clerk.*", "clerk.user.created", false},
		{"clerk.user.created", "clerk.user.created", true},
		{"clerk.user.created", "clerk.user.updated", false},
		{"clerk.user", "clerk.user.created", false},
		{"*.*.created", "clerk.user.created", true},
		{">", "a", true},
	}
	for _, tt := range tests {
		if got := subjectMatches(tt.filter, tt.subject); got != tt.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tt.filter, tt.subject, got, tt.want)
		}
	}
}

func TestEventually(t *testing.T) {
	calls := 0
	Eventually(t, 5*time.Second, "three calls", func() bool {
		calls++
		return calls == 3
	})
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
}

// fatalTB records Fatalf and stops its goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventuallyTimesOut(t *testing.T) {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Eventually(tb, 30*time.Millisecond, "a condition that never holds", func() bool { return false })
	}()
	<-done
	if !strings.Contains(tb.msg, "a condition that never holds") {
		t.Errorf("Fatalf(%q), want the condition named", tb.msg)
	}
}
