package route

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
)

func TestSyncCommands(t *testing.T) {
	on := Sync{Subscribers: true, OrganizationTopics: "org-{organization_id}"}
	const topic = "org-" + orgID
	src := Source{SvixID: "msg_1", ReceivedAt: 7}
	opts := BuildOptions{DefaultLocale: "en_US"}
	misaki := events.Subscriber{SubscriberID: misakiID, FirstName: "美咲 🌸", LastName: "佐藤",
		Email: "misaki@example.jp", Phone: "+818098765432", Avatar: misakiAv, Locale: "en_US", Data: uid(misakiID)}
	tests := []struct {
		name    string
		sync    Sync
		fixture string
		typ     string // with data: an inline event instead of the fixture
		data    string
		want    *events.SyncCommand // nil: no command
		wantErr error
	}{
		{
			name: "user.updated upserts the profile a trigger would carry", sync: on, fixture: "user.updated",
			want: &events.SyncCommand{Kind: events.SyncSubscriberUpsert, Subscriber: &misaki, UpdatedAt: 1755500000100, EventTimestamp: 1755500000150},
		},
		{
			name: "user.deleted deletes", sync: on, fixture: "user.deleted",
			want: &events.SyncCommand{Kind: events.SyncSubscriberDelete, SubscriberID: misakiID, EventTimestamp: 1755500100000},
		},
		{
			name: "membership created adds to the organization's topic", sync: on, fixture: "organizationMembership.created",
			want: &events.SyncCommand{Kind: events.SyncTopicAdd, SubscriberID: misakiID, TopicKey: topic, OrganizationID: orgID,
				UpdatedAt: 1755500002300, EventTimestamp: 1755500002300},
		},
		{
			name: "membership deleted removes", sync: on, typ: "organizationMembership.deleted",
			data: `{"organization":{"id":"org_1"},"public_user_data":{"user_id":"user_2"},"updated_at":42}`,
			want: &events.SyncCommand{Kind: events.SyncTopicRemove, SubscriberID: "user_2", TopicKey: "org-org_1", OrganizationID: "org_1", UpdatedAt: 42},
		},
		{
			name: "organization deleted deletes its topic", sync: on, fixture: "organization.deleted",
			want: &events.SyncCommand{Kind: events.SyncTopicDelete, TopicKey: topic, OrganizationID: orgID, EventTimestamp: 1755500002200},
		},
		{name: "off: nothing", sync: Sync{}, fixture: "user.updated"},
		{name: "topics only: users are not synced", sync: Sync{OrganizationTopics: "org-{organization_id}"}, fixture: "user.deleted"},
		{name: "subscribers only: memberships are not synced", sync: Sync{Subscribers: true}, fixture: "organizationMembership.created"},
		{name: "other types: nothing", sync: on, fixture: "session.created"},
		{name: "membership updated: nothing", sync: on, fixture: "organizationMembership.updated"},
		{name: "membership without an organization", sync: on, typ: "organizationMembership.created",
			data: `{"public_user_data":{"user_id":"user_2"}}`, wantErr: ErrNoRecipient},
		{name: "user.deleted without id", sync: on, typ: "user.deleted", data: `{"deleted":true}`, wantErr: ErrNoRecipient},
		{name: "malformed data", sync: on, typ: "user.deleted", data: `{"id":5}`, wantErr: events.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev events.Event
			if tt.data != "" {
				ev = events.Event{Type: tt.typ, Data: json.RawMessage(tt.data)}
			} else {
				ev, _ = fixture(t, tt.fixture)
			}
			got, err := SyncCommands(tt.sync, ev, src, opts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.want == nil {
				if len(got) != 0 {
					t.Fatalf("commands = %+v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("commands = %+v, want one", got)
			}
			w := *tt.want
			w.SvixID, w.EventType, w.ReceivedAt = "msg_1", ev.Type, 7
			w.ID = events.SyncID("msg_1", w.Kind, w.TopicKey+"/"+w.SubscriberKey())
			if !reflect.DeepEqual(got[0], w) {
				t.Errorf("command =\n%+v\nwant\n%+v", got[0], w)
			}
			if again, _ := SyncCommands(tt.sync, ev, src, opts); again[0].ID != got[0].ID {
				t.Error("id is not deterministic")
			}
		})
	}
}

// TestSyncSameProfileAsTrigger: the subscriber a sync upserts is the one the
// trigger of the same event addresses, so they never disagree.
func TestSyncSameProfileAsTrigger(t *testing.T) {
	for _, f := range []string{"user.created", "user.updated"} {
		ev, _ := fixture(t, f)
		rules := rulesOf(t, "rules:\n  - match: "+ev.Type+"\n    workflows: [w]\n")
		targets, err := Route(rules, ev)
		if err != nil {
			t.Fatal(err)
		}
		cmds, err := Commands(ev, Source{SvixID: "m"}, targets, BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		syncs, err := SyncCommands(Sync{Subscribers: true}, ev, Source{SvixID: "m"}, BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*cmds[0].To.Subscriber, *syncs[0].Subscriber) {
			t.Errorf("%s: trigger %+v, sync %+v", f, cmds[0].To.Subscriber, syncs[0].Subscriber)
		}
	}
}

func TestSyncInRulesDocument(t *testing.T) {
	l, err := Parse("file routes.yaml", []byte("sync:\n  subscribers: true\n  organizationTopics: \"org-{organization_id}\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	rules := mustCompose(t, Defaults(), l)
	if s := rules.Sync(); !s.Subscribers || s.OrganizationTopics != "org-{organization_id}" {
		t.Errorf("sync = %+v", s)
	}
	if rules.Len() != 3 || !strings.HasSuffix(rules.String(), "; sync: subscribers, organization topics org-{organization_id}") {
		t.Errorf("rules = %d, %q", rules.Len(), rules)
	}
	// An extend layer without sync keeps it; a replace layer without sync turns it off.
	ext, _ := Parse("kv", []byte("rules: []"))
	if s := mustCompose(t, Defaults(), l, ext).Sync(); !s.Enabled() {
		t.Error("extend layer turned sync off")
	}
	rep, _ := Parse("kv", []byte("mode: replace\nrules: []"))
	if s := mustCompose(t, Defaults(), l, rep).Sync(); s.Enabled() {
		t.Error("replace layer kept sync")
	}
	if s := mustCompose(t, Defaults()).Sync(); s.Enabled() {
		t.Error("sync is on by default")
	}
	for _, tt := range []struct{ doc, want string }{
		{"sync: {organizationTopics: \"all-orgs\"}\nrules: []", `has no {organization_id}`},
		{"sync: {organizationTopics: \"org.{organization_id}\"}\nrules: []", `does not give a valid Novu topic key`},
		{"sync: {organizationTopics: \"org-{org}-{organization_id}\"}\nrules: []", `the only placeholder is {organization_id}`},
		{"sync: {subscriber: true}\nrules: []", `unknown field "subscriber" in sync: (known: subscribers, organizationTopics)`},
	} {
		if _, err := Parse("f", []byte(tt.doc)); !errors.Is(err, ErrInvalidRules) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.doc, err, tt.want)
		}
	}
}
