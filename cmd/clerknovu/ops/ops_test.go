package ops

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/clerknovu/pipeline/services/router/route"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "2026-12-01T10:00:00Z", want: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
		{in: "2026-12-01T10:00:00.5+01:00", want: time.Date(2026, 12, 1, 9, 0, 0, 5e8, time.UTC)},
		{in: "2h", want: now.Add(-2 * time.Hour)},
		{in: "1h30m", want: now.Add(-90 * time.Minute)},
		{in: "90s", want: now.Add(-90 * time.Second)},
		{in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "0.5d", want: now.Add(-12 * time.Hour)},
		{in: " 2h ", want: now.Add(-2 * time.Hour)},
		{in: "", wantErr: true},
		{in: "yesterday", wantErr: true},
		{in: "-2h", wantErr: true},
		{in: "xd", wantErr: true},
		{in: "2026-12-01", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, now)
		if tt.wantErr {
			if !errors.Is(err, ErrBadSelector) {
				t.Errorf("ParseTime(%q) = %v, %v; want ErrBadSelector", tt.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSeqRange(t *testing.T) {
	tests := []struct {
		in       string
		from, to uint64
		wantErr  bool
	}{
		{in: "5-9", from: 5, to: 9},
		{in: "5-", from: 5},
		{in: "-9", to: 9},
		{in: "7", from: 7, to: 7},
		{in: "7-7", from: 7, to: 7},
		{in: "9-5", wantErr: true},
		{in: "-", wantErr: true},
		{in: "0", wantErr: true},
		{in: "a-b", wantErr: true},
		{in: "", wantErr: true},
		{in: "1-2-3", wantErr: true},
	}
	for _, tt := range tests {
		from, to, err := ParseSeqRange(tt.in)
		if tt.wantErr != (err != nil) || from != tt.from || to != tt.to {
			t.Errorf("ParseSeqRange(%q) = %d, %d, %v", tt.in, from, to, err)
		}
	}
}

func TestSelector(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	router := DeadLetter{Seq: 10, Stage: "router", Type: "user.created", Reason: "no recipient: user.created has no email", Time: t0}
	sink := DeadLetter{Seq: 20, Stage: "sink", Type: "user.created", Workflow: "welcome", Reason: "novu 422: workflow_not_found", Time: t0.Add(time.Hour)}
	tests := []struct {
		name             string
		sel              Selector
		router, sinkWant bool
	}{
		{"everything", Selector{}, true, true},
		{"stage router", Selector{Stage: "router"}, true, false},
		{"stage sink", Selector{Stage: "sink"}, false, true},
		{"type", Selector{Types: []string{"session.created", "user.created"}}, true, true},
		{"other type", Selector{Types: []string{"session.created"}}, false, false},
		{"workflow", Selector{Workflow: "welcome"}, false, true},
		{"reason, any case", Selector{Reason: "WORKFLOW_NOT"}, false, true},
		{"since", Selector{Since: t0.Add(time.Minute)}, false, true},
		{"until inclusive", Selector{Until: t0}, true, false},
		{"seq range", Selector{SeqFrom: 5, SeqTo: 15}, true, false},
		{"seq from", Selector{SeqFrom: 15}, false, true},
		{"combined", Selector{Stage: "sink", Reason: "422", SeqTo: 20}, false, true},
	}
	for _, tt := range tests {
		if got := tt.sel.Match(router); got != tt.router {
			t.Errorf("%s: router dead letter matched %v", tt.name, got)
		}
		if got := tt.sel.Match(sink); got != tt.sinkWant {
			t.Errorf("%s: sink dead letter matched %v", tt.name, got)
		}
	}
	if err := (Selector{Stage: "queue"}).Validate(); !errors.Is(err, ErrBadSelector) {
		t.Errorf("stage queue: %v", err)
	}
	if err := (Selector{Since: t0, Until: t0.Add(-time.Second)}).Validate(); !errors.Is(err, ErrBadSelector) {
		t.Errorf("until before since: %v", err)
	}
}

func TestReadDeadLetterAndRedriveMsg(t *testing.T) {
	h := nats.Header{}
	h.Set(events.SvixIDHeader, "msg_1")
	h.Set(events.TransactionIDHeader, "txn_1")
	h.Set(events.WorkflowIDHeader, "welcome")
	h.Set(events.EventTypeHeader, "user.created")
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set(jetstream.MsgIDHeader, "dlq.sink.txn_1")
	h.Set(events.DLQStageHeader, "sink")
	h.Set(events.DLQReasonHeader, "novu 422")
	h.Set(events.DLQDeliveriesHeader, "3")
	h.Set(events.DLQSourceSubjectHeader, "novu.trigger.welcome")
	h.Set(events.DLQSourceSequenceHeader, "42")
	h.Set(events.RedriveCountHeader, "1")
	d := ReadDeadLetter(7, "dlq.sink.welcome", time.Now(), h, []byte(`{}`))
	if d.Stage != "sink" || d.Workflow != "welcome" || d.Deliveries != 3 || d.SourceStream != events.StreamNovu || d.SourceSequence != 42 || d.Truncated || d.RedriveCount != 1 {
		t.Fatalf("read %+v", d)
	}
	m, err := RedriveMsg(d, d.Body)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "novu.trigger.welcome" || m.Header.Get(jetstream.MsgIDHeader) != "redrive.DLQ.7" ||
		m.Header.Get(events.RedriveOfHeader) != "DLQ/7" || m.Header.Get(events.RedriveCountHeader) != "2" ||
		m.Header.Get(events.TransactionIDHeader) != "txn_1" || m.Header.Get(events.SvixIDHeader) != "msg_1" || m.Header.Get("traceparent") == "" {
		t.Errorf("redrive message %s %v", m.Subject, m.Header)
	}
	for k := range m.Header {
		if strings.HasPrefix(k, "Dlq-") {
			t.Errorf("redrive keeps %s", k)
		}
	}
	// A router dead letter without source headers: the subject says where it came from.
	r := ReadDeadLetter(8, "dlq.router.user.created", time.Now(), nats.Header{events.DLQStageHeader: {"router"}}, nil)
	if r.SourceStream != events.StreamClerk || r.SourceSubject != "clerk.user.created" || r.Type != "user.created" {
		t.Errorf("router dead letter %+v", r)
	}
}

func TestReplayMsg(t *testing.T) {
	h := nats.Header{}
	h.Set(events.SvixIDHeader, "msg_1")
	h.Set(jetstream.MsgIDHeader, "msg_1")
	e := StoredEvent{Seq: 5, Subject: "clerk.user.created", SvixID: "msg_1", Header: h, Body: []byte(`{}`)}
	m := ReplayMsg(e, "run1", false)
	if m.Header.Get(jetstream.MsgIDHeader) != "replay.run1.CLERK.5" || m.Header.Get(events.ReplayOfHeader) != "CLERK/5" || m.Header.Get(events.SvixIDHeader) != "msg_1" {
		t.Errorf("replay %v", m.Header)
	}
	if f := ReplayMsg(e, "run1", true); f.Header.Get(events.SvixIDHeader) != FreshSvixID("msg_1", "run1") || FreshSvixID("msg_1", "run1") == "msg_1" {
		t.Errorf("fresh replay %v", f.Header)
	}
	if e.Header.Get(events.SvixIDHeader) != "msg_1" {
		t.Error("ReplayMsg changed the stored event's headers")
	}
}

// A truncated dead letter is redriven with its source's full body, and
// refused, and kept, once the source is gone.
func TestRedriveTruncated(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	ctx := t.Context()
	full := []byte(`{"type":"user.created","data":{"id":"user_1"},"object":"event","timestamp":1}`)
	src, err := js.PublishMsg(ctx, &nats.Msg{Subject: "clerk.user.created", Data: full, Header: nats.Header{events.SvixIDHeader: {"msg_1"}}})
	if err != nil {
		t.Fatal(err)
	}
	deadLetter := func(seq uint64) {
		dl := events.DeadLetter{Stage: events.StageRouter, Suffix: "user.created", Reason: "too big", SourceSubject: "clerk.user.created", SourceSequence: seq}
		m := dl.Msg(full[:10], nats.Header{events.SvixIDHeader: {"msg_1"}})
		m.Header.Set(events.DLQSourceStreamHeader, events.StreamClerk)
		m.Header.Set(events.DLQTruncatedHeader, "80")
		m.Header.Del(jetstream.MsgIDHeader)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	deadLetter(src.Sequence)
	dls, err := ListDeadLetters(ctx, js, Selector{})
	if err != nil || len(dls) != 1 || !dls[0].Truncated || dls[0].FullSize != 80 {
		t.Fatalf("dead letters %+v, %v", dls, err)
	}
	outs, err := Redrive(ctx, js, dls, RunOptions{})
	if err != nil || len(outs) != 1 || outs[0].Result != ResultRedriven {
		t.Fatalf("redrive %+v, %v", outs, err)
	}
	clerk := eventstest.StreamMsgs(t, js, events.StreamClerk, "clerk.>")
	if len(clerk) != 2 || string(clerk[1].Data) != string(full) {
		t.Fatalf("redriven body %q, want the source's", clerk[len(clerk)-1].Data)
	}

	// The source aged out: refused with the reason, the dead letter kept.
	s, _ := js.Stream(ctx, events.StreamClerk)
	if err := s.DeleteMsg(ctx, src.Sequence); err != nil {
		t.Fatal(err)
	}
	deadLetter(src.Sequence)
	dls, _ = ListDeadLetters(ctx, js, Selector{})
	outs, _ = Redrive(ctx, js, dls, RunOptions{})
	if len(outs) != 1 || outs[0].Result != ResultRefused || !strings.Contains(outs[0].Reason, "aged out") {
		t.Fatalf("redrive of a gone source: %+v", outs)
	}
	if dls, _ := ListDeadLetters(ctx, js, Selector{}); len(dls) != 1 {
		t.Errorf("refused dead letter not kept: %d left", len(dls))
	}
}

// Listing reads headers only, so a large DLQ or a long replay window is
// not held in memory body by body; redrive and replay then read each body
// and republish it unchanged, and refuse one that went away meanwhile
// (a dead letter purged, an event aged out).
func TestListsHoldNoBodiesRedriveAndReplayReadThem(t *testing.T) {
	_, js := eventstest.RunJetStream(t)
	ctx := t.Context()
	body := func(i int) []byte {
		return []byte(`{"type":"user.created","data":{"id":"user_` + string(rune('a'+i)) + `"},"object":"event","timestamp":1}`)
	}
	for i := range 3 {
		dl := events.DeadLetter{Stage: events.StageRouter, Suffix: "user.created", Reason: "no rule", SourceSubject: "clerk.user.created"}
		m := dl.Msg(body(i), nats.Header{events.SvixIDHeader: {"msg_dl_" + string(rune('a'+i))}})
		m.Header.Set(events.DLQSourceStreamHeader, events.StreamClerk)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "clerk.user.created", Data: body(i), Header: nats.Header{events.SvixIDHeader: {"msg_ev_" + string(rune('a'+i))}}}); err != nil {
			t.Fatal(err)
		}
	}
	dls, err := ListDeadLetters(ctx, js, Selector{})
	if err != nil || len(dls) != 3 {
		t.Fatalf("dead letters %d, %v", len(dls), err)
	}
	evs, err := ListEvents(ctx, js, EventSelector{Since: time.Now().Add(-time.Hour)})
	if err != nil || len(evs) != 3 {
		t.Fatalf("events %d, %v", len(evs), err)
	}
	for _, d := range dls {
		if d.Body != nil || d.SvixID == "" || d.Reason != "no rule" {
			t.Errorf("listed dead letter %d: body %q, svix-id %q, reason %q; want no body and the headers", d.Seq, d.Body, d.SvixID, d.Reason)
		}
	}
	for _, e := range evs {
		if e.Body != nil || e.SvixID == "" {
			t.Errorf("listed event %d: body %q, svix-id %q; want no body and the headers", e.Seq, e.Body, e.SvixID)
		}
	}

	// One dead letter is purged between the list and the redrive.
	dlq, _ := js.Stream(ctx, events.StreamDLQ)
	if err := dlq.DeleteMsg(ctx, dls[1].Seq); err != nil {
		t.Fatal(err)
	}
	outs, err := Redrive(ctx, js, dls, RunOptions{})
	if err != nil || len(outs) != 3 {
		t.Fatalf("redrive %+v, %v", outs, err)
	}
	if outs[0].Result != ResultRedriven || outs[2].Result != ResultRedriven || outs[1].Result != ResultRefused || !strings.Contains(outs[1].Reason, "gone") {
		t.Fatalf("redrive outcomes %+v, want the purged one refused", outs)
	}
	// One stored event ages out between the list and the replay.
	clerkStream, _ := js.Stream(ctx, events.StreamClerk)
	if err := clerkStream.DeleteMsg(ctx, evs[1].Seq); err != nil {
		t.Fatal(err)
	}
	outs, err = Replay(ctx, js, evs, "r1", false, RunOptions{})
	if err != nil || len(outs) != 3 {
		t.Fatalf("replay %+v, %v", outs, err)
	}
	if outs[0].Result != ResultReplayed || outs[2].Result != ResultReplayed || outs[1].Result != ResultRefused {
		t.Fatalf("replay outcomes %+v, want the aged-out one refused", outs)
	}
	clerk := eventstest.StreamMsgs(t, js, events.StreamClerk, "clerk.>")
	// a and c stored (b aged out), redriven, replayed: each body unchanged.
	want := []int{0, 2, 0, 2, 0, 2}
	if len(clerk) != len(want) {
		t.Fatalf("CLERK holds %d messages, want %d", len(clerk), len(want))
	}
	for i, w := range want {
		if string(clerk[i].Data) != string(body(w)) {
			t.Errorf("CLERK #%d: body %q, want %q", i+1, clerk[i].Data, body(w))
		}
	}
}

// TestTestRouteShowsSyncCommands: routes test shows the sync commands the
// router publishes, beside the triggers or alone (user.deleted, which no
// rule routes), and skips only an event with neither.
func TestTestRouteShowsSyncCommands(t *testing.T) {
	syncOn, err := CheckRules("test", []byte("sync:\n  subscribers: true\n  organizationTopics: \"org-{organization_id}\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	syncOff, err := CheckRules("test", []byte("rules: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	body := func(name string) []byte {
		s, ok := samples.Get(name)
		if !ok {
			t.Fatalf("no sample %s", name)
		}
		return s.Body
	}
	opts := route.BuildOptions{}

	got := TestRoute(syncOn, body("user.created"), "msg_1", opts)
	if len(got) != 2 || got[0].WorkflowID != "user-created" || got[0].TransactionID != events.TransactionID("msg_1", "user-created") ||
		got[1].Sync == nil || got[1].Sync.Kind != events.SyncSubscriberUpsert || got[1].Sync.Subscriber == nil || got[1].Sync.SvixID != "msg_1" {
		t.Errorf("user.created with sync: %+v", got)
	}

	got = TestRoute(syncOn, body("user.deleted"), "msg_2", opts)
	if len(got) != 1 || got[0].Skipped != "" || got[0].WorkflowID != "" || got[0].Sync == nil ||
		got[0].Sync.Kind != events.SyncSubscriberDelete || got[0].Sync.SubscriberID == "" ||
		got[0].Sync.ID != events.SyncID("msg_2", events.SyncSubscriberDelete, "/"+got[0].Sync.SubscriberID) {
		t.Errorf("user.deleted with sync: %+v", got)
	}

	got = TestRoute(syncOn, body("organizationMembership.created"), "msg_3", opts)
	if len(got) != 1 || got[0].Sync == nil || got[0].Sync.Kind != events.SyncTopicAdd || !strings.HasPrefix(got[0].Sync.TopicKey, "org-org_") {
		t.Errorf("organizationMembership.created with sync: %+v", got)
	}

	got = TestRoute(syncOff, body("user.deleted"), "msg_2", opts)
	if len(got) != 1 || !strings.Contains(got[0].Skipped, "no rule") || got[0].Sync != nil {
		t.Errorf("user.deleted without sync: %+v", got)
	}
}
