package route

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
)

const (
	zoeID     = "user_u8jzPde0IgxLd6GncfBAepfJBd0"
	misakiID  = "user_Kh8oOOL8dKLzdocJ2isAjIhKtJ0"
	samID     = "user_RlgLKOmxgJTeKdNnFRIBXuDL7Dx"
	zoeAvatar = "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCIsImlpZCI6Imluc18yOWlzIn0"
	misakiAv  = "https://img.clerk.com/eyJ0eXBlIjoicHJveHkiLCJzcmMiOiJodHRwcyJ9"
	orgID     = "org_Oq9wMxEhh2FDEEtfjgVvVqE1SkH"
	orgAvatar = "https://img.clerk.com/eyJ0eXBlIjoicHJveHkiLCJvcmciOnRydWV9"
)

func uid(id string) map[string]string { return map[string]string{DataClerkUserID: id} }

func TestBuild(t *testing.T) {
	opts := BuildOptions{DefaultLocale: "en_US"}
	tests := []struct {
		name    string
		fixture string
		opts    *BuildOptions // nil: DEFAULT_LOCALE en_US
		want    events.Subscriber
		wantErr error
	}{
		{
			name: "user.created: unicode names, primary email and phone, event locale, username", fixture: "user.created",
			want: events.Subscriber{SubscriberID: zoeID, FirstName: "Zoë", LastName: "Núñez-Łukasiewicz",
				Email: "zoe.nunez@example.com", Phone: "+33612345678", Avatar: zoeAvatar, Locale: "fr-FR",
				Data: map[string]string{DataClerkUserID: zoeID, DataUsername: "zoe_n"}},
		},
		{
			name: "user.updated: the first email and phone are not the primary ones", fixture: "user.updated",
			want: events.Subscriber{SubscriberID: misakiID, FirstName: "美咲 🌸", LastName: "佐藤",
				Email: "misaki@example.jp", Phone: "+818098765432", Avatar: misakiAv, Locale: "en_US", Data: uid(misakiID)},
		},
		{
			name: "user.updated: DEFAULT_LOCALE applies when the user has none", fixture: "user.updated",
			opts: &BuildOptions{DefaultLocale: "de_DE"},
			want: events.Subscriber{SubscriberID: misakiID, FirstName: "美咲 🌸", LastName: "佐藤",
				Email: "misaki@example.jp", Phone: "+818098765432", Avatar: misakiAv, Locale: "de_DE", Data: uid(misakiID)},
		},
		{
			name: "user.deleted: zero options still give en_US", fixture: "user.deleted",
			opts: &BuildOptions{},
			want: events.Subscriber{SubscriberID: misakiID, Locale: "en_US", Data: uid(misakiID)},
		},
		{
			name: "session.created: names and email from data.user, null locale", fixture: "session.created",
			want: events.Subscriber{SubscriberID: zoeID, FirstName: "Zoë", LastName: "Núñez-Łukasiewicz",
				Email: "zoe.nunez@example.com", Avatar: zoeAvatar, Locale: "en_US",
				Data: map[string]string{DataClerkUserID: zoeID, DataUsername: "zoe_n"}},
		},
		{
			name: "session.revoked: user is null, the user id still names the recipient", fixture: "session.revoked",
			want: events.Subscriber{SubscriberID: zoeID, Locale: "en_US", Data: uid(zoeID)},
		},
		{
			name: "session.ended: primary lookups inside data.user, user locale", fixture: "session.ended",
			want: events.Subscriber{SubscriberID: misakiID, FirstName: "美咲 🌸", LastName: "佐藤",
				Email: "misaki@example.jp", Phone: "+818098765432", Avatar: misakiAv, Locale: "ja-JP", Data: uid(misakiID)},
		},
		{
			name: "session.pending", fixture: "session.pending",
			want: events.Subscriber{SubscriberID: zoeID, FirstName: "Zoë", LastName: "Núñez-Łukasiewicz",
				Email: "zoe.nunez@example.com", Avatar: zoeAvatar, Locale: "fr-FR",
				Data: map[string]string{DataClerkUserID: zoeID, DataUsername: "zoe_n"}},
		},
		{
			name: "session.removed: user null", fixture: "session.removed",
			want: events.Subscriber{SubscriberID: misakiID, Locale: "en_US", Data: uid(misakiID)},
		},
		{
			name: "email.created for a user: user id, to_email_address", fixture: "email.created.magic_link_sign_in",
			want: events.Subscriber{SubscriberID: zoeID, Email: "zoe.nunez@example.com", Locale: "en_US", Data: uid(zoeID)},
		},
		{
			name: "email.created with user_id null: the address is the subscriber id, never ema_", fixture: "email.created.invitation",
			want: events.Subscriber{SubscriberID: "jürgen.invitee@example.de", Email: "jürgen.invitee@example.de", Locale: "en_US"},
		},
		{
			name: "email.created waitlist confirmation: user_id null", fixture: "email.created.waitlist_confirmation",
			want: events.Subscriber{SubscriberID: "o'brien+waitlist@example.ie", Email: "o'brien+waitlist@example.ie", Locale: "en_US"},
		},
		{
			name: "email.created with an unknown slug still names its user", fixture: "email.created.new_device_sign_in",
			want: events.Subscriber{SubscriberID: zoeID, Email: "zoe.nunez@example.com", Locale: "en_US", Data: uid(zoeID)},
		},
		{
			name: "sms.created for a user", fixture: "sms.created",
			want: events.Subscriber{SubscriberID: zoeID, Phone: "+33612345678", Locale: "en_US", Data: uid(zoeID)},
		},
		{
			name: "sms.created with user_id null: the number is the subscriber id", fixture: "sms.created.no_user",
			want: events.Subscriber{SubscriberID: "+4915112345678", Phone: "+4915112345678", Locale: "en_US"},
		},
		{
			name: "organization.created: the creator", fixture: "organization.created",
			want: events.Subscriber{SubscriberID: zoeID, Locale: "en_US", Data: uid(zoeID)},
		},
		{name: "organization.updated with created_by null names nobody", fixture: "organization.updated", wantErr: ErrNoRecipient},
		{name: "organization.deleted names nobody", fixture: "organization.deleted", wantErr: ErrNoRecipient},
		{
			name: "organizationMembership.created: public_user_data, email identifier", fixture: "organizationMembership.created",
			want: events.Subscriber{SubscriberID: misakiID, FirstName: "美咲 🌸", LastName: "佐藤",
				Email: "misaki@example.jp", Avatar: misakiAv, Locale: "en_US", Data: uid(misakiID)},
		},
		{
			name: "organizationMembership.updated: phone identifier, username", fixture: "organizationMembership.updated",
			want: events.Subscriber{SubscriberID: samID, FirstName: "Sam", Phone: "+14155550123",
				Avatar: "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9", Locale: "en_US",
				Data: map[string]string{DataClerkUserID: samID, DataUsername: "sam.phone"}},
		},
		{
			name: "organizationDomain.created: the affiliation address", fixture: "organizationDomain.created",
			want: events.Subscriber{SubscriberID: "admin@ateliers-nunez.fr", Email: "admin@ateliers-nunez.fr", Locale: "en_US"},
		},
		{name: "organizationDomain.deleted names nobody", fixture: "organizationDomain.deleted", wantErr: ErrNoRecipient},
		{
			name: "organizationInvitation.created: the invitee address", fixture: "organizationInvitation.created",
			want: events.Subscriber{SubscriberID: "lea.muller@example.ch", Email: "lea.muller@example.ch", Locale: "en_US"},
		},
		{
			name: "organizationInvitation.accepted: the new member's user id", fixture: "organizationInvitation.accepted",
			want: events.Subscriber{SubscriberID: samID, Email: "lea.muller@example.ch", Locale: "en_US", Data: uid(samID)},
		},
		{
			name: "organizationInvitation.revoked", fixture: "organizationInvitation.revoked",
			want: events.Subscriber{SubscriberID: "mallory@example.net", Email: "mallory@example.net", Locale: "en_US"},
		},
		{
			name: "invitation.created", fixture: "invitation.created",
			want: events.Subscriber{SubscriberID: "ana.souza@example.com.br", Email: "ana.souza@example.com.br", Locale: "en_US"},
		},
		{
			name: "invitation.accepted", fixture: "invitation.accepted",
			want: events.Subscriber{SubscriberID: "ana.souza@example.com.br", Email: "ana.souza@example.com.br", Locale: "en_US"},
		},
		{
			name: "invitation.revoked", fixture: "invitation.revoked",
			want: events.Subscriber{SubscriberID: "old.invite@example.org", Email: "old.invite@example.org", Locale: "en_US"},
		},
		{
			name: "waitlistEntry.created", fixture: "waitlistEntry.created",
			want: events.Subscriber{SubscriberID: "o'brien+waitlist@example.ie", Email: "o'brien+waitlist@example.ie", Locale: "en_US"},
		},
		{
			name: "waitlistEntry.updated", fixture: "waitlistEntry.updated",
			want: events.Subscriber{SubscriberID: "o'brien+waitlist@example.ie", Email: "o'brien+waitlist@example.ie", Locale: "en_US"},
		},
		{name: "permission.created names nobody", fixture: "permission.created", wantErr: ErrNoRecipient},
		{name: "role.created names nobody", fixture: "role.created", wantErr: ErrNoRecipient},
		{
			name: "subscription.created: a user payer", fixture: "subscription.created",
			want: events.Subscriber{SubscriberID: zoeID, FirstName: "Zoë", LastName: "Núñez-Łukasiewicz",
				Email: "zoe.nunez@example.com", Avatar: zoeAvatar, Locale: "en_US", Data: uid(zoeID)},
		},
		{
			name: "subscription.pastDue: an organization payer is its organization id", fixture: "subscription.pastDue",
			want: events.Subscriber{SubscriberID: orgID, Email: "billing@ateliers-nunez.fr", Avatar: orgAvatar, Locale: "en_US"},
		},
		{
			name: "subscriptionItem.created: a user payer", fixture: "subscriptionItem.created",
			want: events.Subscriber{SubscriberID: zoeID, FirstName: "Zoë", LastName: "Núñez-Łukasiewicz",
				Email: "zoe.nunez@example.com", Avatar: zoeAvatar, Locale: "en_US", Data: uid(zoeID)},
		},
		{
			name: "subscriptionItem.freeTrialEnding: an organization payer", fixture: "subscriptionItem.freeTrialEnding",
			want: events.Subscriber{SubscriberID: orgID, Email: "billing@ateliers-nunez.fr", Avatar: orgAvatar, Locale: "en_US"},
		},
		{
			name: "paymentAttempt.created: a user payer", fixture: "paymentAttempt.created",
			want: events.Subscriber{SubscriberID: zoeID, FirstName: "Zoë", LastName: "Núñez-Łukasiewicz",
				Email: "zoe.nunez@example.com", Avatar: zoeAvatar, Locale: "en_US", Data: uid(zoeID)},
		},
		{
			name: "paymentAttempt.updated: an organization payer", fixture: "paymentAttempt.updated",
			want: events.Subscriber{SubscriberID: orgID, Email: "billing@ateliers-nunez.fr", Avatar: orgAvatar, Locale: "en_US"},
		},
		{name: "an unknown family names nobody", fixture: "apiKey.created", wantErr: ErrNoRecipient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, _ := fixture(t, tt.fixture)
			o := opts
			if tt.opts != nil {
				o = *tt.opts
			}
			got, err := Build(ev, o)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Build error = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Build =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestBuildEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		data    string
		want    events.Subscriber
		wantErr error
	}{
		{name: "absent data", typ: "user.created", data: "", wantErr: ErrNoRecipient},
		{name: "null data", typ: "user.created", data: "null", wantErr: ErrNoRecipient},
		{name: "data is an array", typ: "user.created", data: `[1,2]`, wantErr: events.ErrInvalidEvent},
		{name: "a field of the wrong type", typ: "user.created", data: `{"id":"user_1","first_name":42}`, wantErr: events.ErrInvalidEvent},
		{name: "primary id that matches no address", typ: "user.created",
			data: `{"id":"user_1","primary_email_address_id":"idn_gone","email_addresses":[{"id":"idn_other","email_address":"x@example.com"}]}`,
			want: events.Subscriber{SubscriberID: "user_1", Locale: "en_US", Data: uid("user_1")}},
		{name: "no primary id: never the first address", typ: "user.created",
			data: `{"id":"user_1","primary_email_address_id":null,"email_addresses":[{"id":"idn_a","email_address":"x@example.com"}]}`,
			want: events.Subscriber{SubscriberID: "user_1", Locale: "en_US", Data: uid("user_1")}},
		{name: "session with neither user_id nor user", typ: "session.ended", data: `{"id":"sess_1","user":null}`, wantErr: ErrNoRecipient},
		{name: "session with only data.user.id", typ: "session.created", data: `{"user":{"id":"user_9"}}`,
			want: events.Subscriber{SubscriberID: "user_9", Locale: "en_US", Data: uid("user_9")}},
		{name: "email with no user and no address", typ: "email.created", data: `{"id":"ema_1","user_id":null,"to_email_address":""}`, wantErr: ErrNoRecipient},
		{name: "sms with no user and no number", typ: "sms.created", data: `{"id":"sms_1"}`, wantErr: ErrNoRecipient},
		{name: "membership without public_user_data", typ: "organizationMembership.deleted", data: `{"id":"orgmem_1"}`, wantErr: ErrNoRecipient},
		{name: "membership identifier that is a username", typ: "organizationMembership.deleted",
			data: `{"public_user_data":{"user_id":"user_2","identifier":"jdoe"}}`,
			want: events.Subscriber{SubscriberID: "user_2", Locale: "en_US", Data: uid("user_2")}},
		{name: "billing without payer", typ: "subscription.updated", data: `{"id":"csub_1"}`, wantErr: ErrNoRecipient},
		{name: "billing payer with neither id", typ: "subscription.active", data: `{"payer":{"user_id":"","organization_id":null,"email":"a@example.com"}}`, wantErr: ErrNoRecipient},
		{name: "domain without affiliation address", typ: "organizationDomain.updated", data: `{"id":"orgdmn_1","affiliation_email_address":null}`, wantErr: ErrNoRecipient},
		{name: "invitation without address", typ: "invitation.created", data: `{"id":"inv_1"}`, wantErr: ErrNoRecipient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := events.Event{Type: tt.typ, Data: json.RawMessage(tt.data)}
			got, err := Build(ev, BuildOptions{})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Build error = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Build =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestBuildOmitsEmpty checks the wire form: no "" and no null reach Novu.
func TestBuildOmitsEmpty(t *testing.T) {
	ev, _ := fixture(t, "session.revoked")
	s, err := Build(ev, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"subscriberId":"user_u8jzPde0IgxLd6GncfBAepfJBd0","locale":"en_US","data":{"clerkUserId":"user_u8jzPde0IgxLd6GncfBAepfJBd0"}}`
	if string(b) != want {
		t.Errorf("wire form = %s, want %s", b, want)
	}
}
