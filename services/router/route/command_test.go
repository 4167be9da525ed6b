package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
)

const svixID = "msg_2yeE6RsXcNOPmeMjvqPVStNKiaE"

func TestCommandsUserCreated(t *testing.T) {
	ev, body := fixture(t, "user.created")
	targets, err := Route(mustCompose(t, Defaults()), ev)
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := Commands(ev, Source{SvixID: svixID, ReceivedAt: 1755500000123}, targets, BuildOptions{DefaultLocale: "en_US"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 1 {
		t.Fatalf("%d commands, want 1", len(cmds))
	}
	c := cmds[0]
	want := events.TriggerCommand{
		WorkflowID: "user-created",
		To: events.Recipient{Subscriber: &events.Subscriber{SubscriberID: zoeID, FirstName: "Zoë", LastName: "Núñez-Łukasiewicz",
			Email: "zoe.nunez@example.com", Phone: "+33612345678", Avatar: zoeAvatar, Locale: "fr-FR",
			Data: map[string]string{DataClerkUserID: zoeID, DataUsername: "zoe_n"}}},
		Payload:        ev.Data,
		TransactionID:  events.TransactionID(svixID, "user-created"),
		SvixID:         svixID,
		EventType:      "user.created",
		EventTimestamp: 1755500000000,
		ReceivedAt:     1755500000123,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("command =\n%+v\nwant\n%+v", c, want)
	}

	// The wire form keeps data byte for byte: integers beyond 2^53, unicode,
	// and HTML characters unescaped.
	wire, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := events.ParseCommand(wire)
	if err != nil {
		t.Fatalf("ParseCommand(Encode(c)): %v", err)
	}
	start := bytes.Index(body, []byte(`{"backup_code_enabled"`))
	end := bytes.Index(body, []byte(`,"event_attributes"`))
	if start < 0 || end < 0 {
		t.Fatal("fixture layout changed")
	}
	if raw := body[start:end]; !bytes.Equal(parsed.Payload, raw) {
		t.Errorf("payload is not byte-exact:\n got %s\nwant %s", parsed.Payload, raw)
	}
	for _, s := range []string{"9007199254740993", "12345678901234567890", "-9223372036854775808", "18446744073709551615",
		"1.0000000000000002", `"<dark> & \"bold\""`, "Núñez-Łukasiewicz"} {
		if !bytes.Contains(wire, []byte(s)) {
			t.Errorf("wire form lost %s", s)
		}
	}
	if bytes.HasSuffix(wire, []byte("\n")) {
		t.Error("wire form ends with a newline")
	}
}

// TestCommandsPrettyData: pretty-printed data keeps every value; only the
// insignificant whitespace goes.
func TestCommandsPrettyData(t *testing.T) {
	ev, _ := fixture(t, "user.updated")
	cmds, err := Commands(ev, Source{SvixID: svixID}, []Target{{WorkflowID: "profile"}}, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wire, err := Encode(cmds[0])
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := events.ParseCommand(wire)
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, ev.Data); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parsed.Payload, compact.Bytes()) {
		t.Errorf("payload =\n%s\nwant\n%s", parsed.Payload, compact.Bytes())
	}
}

func TestCommandsRecipients(t *testing.T) {
	ev, _ := fixture(t, "paymentAttempt.created")
	targets := []Target{
		{WorkflowID: "billing-payment"},
		{WorkflowID: "billing-payment-audit", To: Recipient{Kind: RecipientTopic, TopicKey: "finance", Exclude: []string{"user_1"}}},
		{WorkflowID: "billing-owner", To: Recipient{Kind: RecipientSubscriber, SubscriberID: "owner@example.com"}},
		{WorkflowID: "billing-payment-2", To: Recipient{Kind: RecipientEvent}},
	}
	cmds, err := Commands(ev, Source{SvixID: svixID}, targets, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 4 {
		t.Fatalf("%d commands, want 4", len(cmds))
	}
	if s := cmds[0].To.Subscriber; s == nil || s.SubscriberID != zoeID || cmds[0].To.Topic != nil {
		t.Errorf("event recipient = %+v", cmds[0].To)
	}
	if tp := cmds[1].To.Topic; tp == nil || tp.TopicKey != "finance" || !slices.Equal(tp.Exclude, []string{"user_1"}) || cmds[1].To.Subscriber != nil {
		t.Errorf("topic recipient = %+v", cmds[1].To)
	}
	if s := cmds[2].To.Subscriber; s == nil || !reflect.DeepEqual(*s, events.Subscriber{SubscriberID: "owner@example.com"}) {
		t.Errorf("fixed subscriber = %+v", cmds[2].To.Subscriber)
	}
	if cmds[3].To.Subscriber != cmds[0].To.Subscriber {
		t.Error("the event's subscriber is built more than once")
	}
	seen := map[string]bool{}
	for _, c := range cmds {
		if c.TransactionID != events.TransactionID(svixID, c.WorkflowID) || seen[c.TransactionID] {
			t.Errorf("%s: transactionId %s", c.WorkflowID, c.TransactionID)
		}
		seen[c.TransactionID] = true
	}

	// A topic needs no person: role.created goes through.
	role, _ := fixture(t, "role.created")
	if _, err := Commands(role, Source{SvixID: svixID}, targets[1:2], BuildOptions{}); err != nil {
		t.Errorf("role.created to a topic: %v", err)
	}
}

func TestCommandsErrors(t *testing.T) {
	role, _ := fixture(t, "role.created")
	user, _ := fixture(t, "user.created")
	tests := []struct {
		name    string
		ev      events.Event
		src     Source
		wantErr error
		msg     string
	}{
		{name: "routed to the event's person, and it names none", ev: role, src: Source{SvixID: svixID}, wantErr: ErrNoRecipient, msg: "name no person"},
		{name: "no svix id", ev: user, wantErr: events.ErrInvalidEvent, msg: "no svix-id"},
		{name: "data is an array", ev: events.Event{Type: "user.created", Data: json.RawMessage(`[]`)}, src: Source{SvixID: svixID}, wantErr: events.ErrInvalidEvent, msg: "not a JSON object"},
		{name: "no data", ev: events.Event{Type: "user.created"}, src: Source{SvixID: svixID}, wantErr: events.ErrInvalidEvent, msg: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Commands(tt.ev, tt.src, []Target{{WorkflowID: "w"}}, BuildOptions{})
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Commands error = %v, want %v saying %q", err, tt.wantErr, tt.msg)
			}
		})
	}
}

// TestExampleRules: routes.example.yaml loads, routes every type of the
// catalog, and turns every realistic fixture into commands.
func TestExampleRules(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "routes.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := Parse("file routes.example.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	rules := mustCompose(t, Defaults(), layer)
	for _, typ := range catalog {
		data := json.RawMessage(`{"slug":"verification_code"}`)
		targets, err := Route(rules, events.Event{Type: typ, Data: data})
		if err != nil || len(targets) == 0 {
			t.Errorf("%s is not routed: %v", typ, err)
		}
	}
	broken := map[string]error{
		"email.created.bad_slug": ErrInvalidWorkflow,
		"email.created.no_slug":  ErrInvalidWorkflow,
	}
	for _, name := range fixtureNames(t) {
		ev, _ := fixture(t, name)
		targets, err := Route(rules, ev)
		if err == nil {
			_, err = Commands(ev, Source{SvixID: svixID}, targets, BuildOptions{})
		}
		if !errors.Is(err, broken[name]) {
			t.Errorf("%s: %v, want %v", name, err, broken[name])
		}
	}
	// The examples the file's comments promise.
	check := func(fixtureName string, want ...string) {
		t.Helper()
		ev, _ := fixture(t, fixtureName)
		got, err := Route(rules, ev)
		if err != nil || !slices.Equal(workflows(got), want) {
			t.Errorf("%s → %v, %v; want %v", fixtureName, workflows(got), err, want)
		}
	}
	check("session.created", "recent-login-v2")
	check("session.revoked", "session-activity")
	check("email.created.invitation", "user-invitation")
	check("organization.created", "organization-created")
	check("organization.updated", "organization-changed")
	check("subscriptionItem.freeTrialEnding", "billing-free-trial-ending")
	check("paymentAttempt.updated", "billing-payment", "billing-payment-audit")
	check("apiKey.created", "clerk-event-audit")
}

func BenchmarkRoute(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "routes.example.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	layer, err := Parse("example", data)
	if err != nil {
		b.Fatal(err)
	}
	rules := mustCompose(b, Defaults(), layer)
	for _, name := range []string{"user.created", "email.created.magic_link_sign_in", "organizationMembership.created", "apiKey.created"} {
		ev, _ := fixture(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Route(rules, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	for _, name := range []string{"user.created", "session.created", "email.created.magic_link_sign_in", "subscription.created"} {
		ev, _ := fixture(b, name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Build(ev, BuildOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCommands(b *testing.B) {
	ev, _ := fixture(b, "user.created")
	rules := mustCompose(b, Defaults())
	b.ReportAllocs()
	for b.Loop() {
		targets, err := Route(rules, ev)
		if err != nil {
			b.Fatal(err)
		}
		cmds, err := Commands(ev, Source{SvixID: svixID}, targets, BuildOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Encode(cmds[0]); err != nil {
			b.Fatal(err)
		}
	}
}
