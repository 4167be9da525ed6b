package route

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
)

func mustCompose(t testing.TB, layers ...Layer) *Rules {
	t.Helper()
	rs, err := Compose(layers...)
	if err != nil {
		t.Fatalf("Compose: %v", err)
	}
	return rs
}

func mustParse(t testing.TB, source, doc string) Layer {
	t.Helper()
	l, err := Parse(source, []byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return l
}

func workflows(targets []Target) []string {
	out := make([]string, len(targets))
	for i, t := range targets {
		out[i] = t.WorkflowID
	}
	return out
}

func TestRouteDefaults(t *testing.T) {
	rules := mustCompose(t, Defaults())
	tests := []struct {
		fixture string
		want    []string
		wantErr error
	}{
		{fixture: "session.created", want: []string{"recent-login-v2"}},
		{fixture: "user.created", want: []string{"user-created"}},
		{fixture: "email.created.magic_link_sign_in", want: []string{"auth-magic-link-login"}},
		{fixture: "email.created.invitation", want: []string{"user-invitation"}},
		{fixture: "email.created.waitlist_confirmation", want: []string{"waitlist-signup-confirmed"}},
		{fixture: "email.created.new_device_sign_in", want: []string{"email-new-device-sign-in"}},
		{fixture: "email.created.bad_slug", wantErr: ErrInvalidWorkflow},
		{fixture: "email.created.no_slug", wantErr: ErrInvalidWorkflow},
		{fixture: "user.updated", wantErr: ErrNoRoute},
		{fixture: "user.deleted", wantErr: ErrNoRoute},
		{fixture: "session.revoked", wantErr: ErrNoRoute},
		{fixture: "session.ended", wantErr: ErrNoRoute},
		{fixture: "sms.created", wantErr: ErrNoRoute},
		{fixture: "organization.created", wantErr: ErrNoRoute},
		{fixture: "organizationMembership.created", wantErr: ErrNoRoute},
		{fixture: "organizationInvitation.created", wantErr: ErrNoRoute},
		{fixture: "organizationDomain.created", wantErr: ErrNoRoute},
		{fixture: "invitation.created", wantErr: ErrNoRoute},
		{fixture: "waitlistEntry.created", wantErr: ErrNoRoute},
		{fixture: "permission.created", wantErr: ErrNoRoute},
		{fixture: "role.created", wantErr: ErrNoRoute},
		{fixture: "subscription.created", wantErr: ErrNoRoute},
		{fixture: "subscriptionItem.created", wantErr: ErrNoRoute},
		{fixture: "paymentAttempt.created", wantErr: ErrNoRoute},
		{fixture: "apiKey.created", wantErr: ErrNoRoute},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			ev, _ := fixture(t, tt.fixture)
			got, err := Route(rules, ev)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Route error = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(workflows(got), tt.want) {
				t.Errorf("Route = %v, want %v", workflows(got), tt.want)
			}
		})
	}
}

// TestDefaultEmailSlugs spells out the reference integration's table
// independently of DefaultEmailSlugs, so an edit there cannot go unnoticed.
func TestDefaultEmailSlugs(t *testing.T) {
	reference := map[string]string{
		"magic_link_sign_in":               "auth-magic-link-login",
		"magic_link_sign_up":               "auth-magic-link-registration",
		"magic_link_user_profile":          "profile-magic-link-update",
		"organization_invitation":          "organization-invitation-v2",
		"organization_invitation_accepted": "org-member-joined",
		"passkey_added":                    "security-passkey-created",
		"passkey_removed":                  "security-passkey-deleted",
		"password_changed":                 "security-password-updated",
		"password_removed":                 "security-password-deleted",
		"primary_email_address_changed":    "profile-email-updated",
		"reset_password_code":              "reset-password-code-v2",
		"verification_code":                "verification-code-v2",
		"waitlist_confirmation":            "waitlist-signup-confirmed",
		"waitlist_invitation":              "waitlist-access-granted",
		"invitation":                       "user-invitation",
		// Unknown slugs: "email-" + the slug with '_' turned into '-'.
		"new_device_sign_in":   "email-new-device-sign-in",
		"null_user_id":         "email-null-user-id",
		"account_locked":       "email-account-locked",
		"Already-Kebab":        "email-Already-Kebab",
		"sign_in_from_new_geo": "email-sign-in-from-new-geo",
	}
	rules := mustCompose(t, Defaults())
	if got := len(DefaultEmailSlugs()); got != 15 {
		t.Errorf("DefaultEmailSlugs has %d slugs, want the reference's 15", got)
	}
	for slug, want := range reference {
		data, _ := json.Marshal(map[string]any{"id": "ema_1", "slug": slug, "user_id": "user_1", "to_email_address": "a@example.com"})
		got, err := Route(rules, events.Event{Type: "email.created", Data: data})
		if err != nil {
			t.Errorf("slug %s: %v", slug, err)
			continue
		}
		if !slices.Equal(workflows(got), []string{want}) {
			t.Errorf("slug %s → %v, want %s", slug, workflows(got), want)
		}
	}
}

func TestRoutePrecedence(t *testing.T) {
	doc := `
mode: replace
rules:
  - match: "*"
    workflows: [catch-all]
    to: {type: Topic, topicKey: ops}
  - match: organizationMembership.*
    workflows: [membership-any]
  - match: organizationMembership.created
    workflows: [membership-created]
  - match: user.*
    workflows: [user-any]
  - match: "*.created"
    workflows: [anything-created]
  - match: session.>
    workflows: [session-tail]
  - match: "*.*"
    workflows: [two-tokens]
`
	rules := mustCompose(t, Defaults(), mustParse(t, "test", doc))
	tests := []struct {
		typ  string
		want string
	}{
		{"organizationMembership.created", "membership-created"}, // exact beats every pattern
		{"organizationMembership.deleted", "membership-any"},     // a literal first token beats '*'
		{"user.created", "user-any"},                             // user.* beats *.created: literal at the first token
		{"role.created", "anything-created"},                     // *.created beats *.*: literal at the second token
		{"role.updated", "two-tokens"},                           // *.* beats * (which is '>')
		{"session.created", "session-tail"},                      // the defaults are gone: mode replace
		{"email.created", "anything-created"},                    // idem
		{"billing.statement.created", "catch-all"},               // three tokens: only '*' alone matches
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			got, err := Route(rules, events.Event{Type: tt.typ, Data: json.RawMessage(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(workflows(got), []string{tt.want}) {
				t.Errorf("Route(%s) = %v, want [%s]", tt.typ, workflows(got), tt.want)
			}
		})
	}
}

func TestComposeLayers(t *testing.T) {
	fileExtend := mustParse(t, "file routes.yaml", `
rules:
  - match: user.created
    workflows: [welcome, crm-sync]
  - match: role.*
    workflows: [access-changed]
    to: {topicKey: security}
  - match: session.created
    drop: true
`)
	fileReplace := mustParse(t, "file routes.yaml", `
mode: replace
rules:
  - match: user.created
    workflows: [welcome]
`)
	kvExtend := mustParse(t, "kv ROUTES/rules rev 3", `
mode: extend
rules:
  - match: role.created
    workflows: [role-created]
    to: {type: Topic, topicKey: security}
  - match: user.created
    workflows: [welcome-v2]
`)
	kvReplace := mustParse(t, "kv ROUTES/rules rev 4", `
mode: replace
rules:
  - match: invitation.created
    workflows: [invite]
`)
	tests := []struct {
		name   string
		layers []Layer
		want   map[string][]string // event type → workflows; nil means no route
	}{
		{
			name:   "defaults only",
			layers: []Layer{Defaults()},
			want:   map[string][]string{"user.created": {"user-created"}, "session.created": {"recent-login-v2"}, "role.created": nil},
		},
		{
			name:   "file extends: its user.created replaces the default one, drop removes session.created, new patterns add",
			layers: []Layer{Defaults(), fileExtend},
			want: map[string][]string{"user.created": {"welcome", "crm-sync"}, "session.created": nil,
				"role.updated": {"access-changed"}, "email.created": {"auth-magic-link-login"}},
		},
		{
			name:   "file replaces: the defaults are gone",
			layers: []Layer{Defaults(), fileReplace},
			want:   map[string][]string{"user.created": {"welcome"}, "session.created": nil, "email.created": nil},
		},
		{
			name:   "KV extends over the file: KV wins for the patterns it names",
			layers: []Layer{Defaults(), fileExtend, kvExtend},
			want: map[string][]string{"user.created": {"welcome-v2"}, "role.created": {"role-created"},
				"role.deleted": {"access-changed"}, "session.created": nil, "email.created": {"auth-magic-link-login"}},
		},
		{
			name:   "KV replaces: defaults and file are gone",
			layers: []Layer{Defaults(), fileExtend, kvReplace},
			want:   map[string][]string{"invitation.created": {"invite"}, "user.created": nil, "email.created": nil},
		},
	}
	data := json.RawMessage(`{"slug":"magic_link_sign_in"}`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules := mustCompose(t, tt.layers...)
			for typ, want := range tt.want {
				got, err := Route(rules, events.Event{Type: typ, Data: data})
				if want == nil {
					if !errors.Is(err, ErrNoRoute) {
						t.Errorf("%s: Route = %v, %v; want ErrNoRoute", typ, workflows(got), err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", typ, err)
					continue
				}
				if !slices.Equal(workflows(got), want) {
					t.Errorf("%s: Route = %v, want %v", typ, workflows(got), want)
				}
			}
		})
	}
}

func TestRouteSeveralRulesAndRecipients(t *testing.T) {
	rules := mustCompose(t, Defaults(), mustParse(t, "test", `
rules:
  - match: paymentAttempt.*
    workflows: [billing-payment]
  - match: paymentAttempt.*
    workflows: [billing-payment-audit]
    to: {type: Topic, topicKey: "finance", exclude: [user_1]}
  - match: paymentAttempt.*
    workflows: [billing-payment-owner]
    to: {type: Subscriber, subscriberId: "owner@example.com"}
  - match: sms.created
    slugs: {verification_code: sms-verification-code}
  - match: sms.created
    slugs: {verification_code: sms-audit, reset_password_code: sms-audit}
    to: {topicKey: sms-audit}
`))
	ev, _ := fixture(t, "paymentAttempt.created")
	got, err := Route(rules, ev)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"billing-payment", "billing-payment-audit", "billing-payment-owner"}; !slices.Equal(workflows(got), want) {
		t.Fatalf("Route = %v, want %v", workflows(got), want)
	}
	if got[0].To.kind() != RecipientEvent || got[1].To.TopicKey != "finance" || got[2].To.SubscriberID != "owner@example.com" {
		t.Errorf("recipients = %+v %+v %+v", got[0].To, got[1].To, got[2].To)
	}
	if !strings.Contains(got[1].Rule.Position(), "rule 2") {
		t.Errorf("target rule position = %q", got[1].Rule.Position())
	}

	sms, _ := fixture(t, "sms.created")
	got, err = Route(rules, sms)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sms-verification-code", "sms-audit"}; !slices.Equal(workflows(got), want) {
		t.Errorf("sms Route = %v, want %v", workflows(got), want)
	}
	// A slug that no rule maps and no fallback covers: not routed.
	other := events.Event{Type: "sms.created", Data: json.RawMessage(`{"slug":"new_slug"}`)}
	if _, err := Route(rules, other); !errors.Is(err, ErrNoRoute) {
		t.Errorf("unmapped sms slug: err = %v, want ErrNoRoute", err)
	}
}

func TestRouteErrors(t *testing.T) {
	rules := mustCompose(t, Defaults(), mustParse(t, "test", `
rules:
  - match: sms.created
    fallback: "sms-{slug}"
  - match: invitation.created
    fallback: invitation-generic
`))
	tests := []struct {
		name    string
		rules   *Rules
		ev      events.Event
		want    []string
		wantErr error
		msg     string
	}{
		{name: "nil rules", ev: events.Event{Type: "user.created"}, wantErr: ErrNoRoute},
		{name: "unknown type", rules: rules, ev: events.Event{Type: "apiKey.created"}, wantErr: ErrNoRoute, msg: `no rule matches "apiKey.created"`},
		{name: "slug with a dot", rules: rules, ev: events.Event{Type: "sms.created", Data: json.RawMessage(`{"slug":"a.b"}`)},
			wantErr: ErrInvalidWorkflow, msg: `slug "a.b" gives "sms-a.b"`},
		{name: "slug with a space", rules: rules, ev: events.Event{Type: "email.created", Data: json.RawMessage(`{"slug":"x y"}`)},
			wantErr: ErrInvalidWorkflow, msg: `defaults: rule 3 (match "email.created")`},
		{name: "empty slug", rules: rules, ev: events.Event{Type: "email.created", Data: json.RawMessage(`{"slug":""}`)},
			wantErr: ErrInvalidWorkflow, msg: "has no slug"},
		{name: "data is not an object", rules: rules, ev: events.Event{Type: "email.created", Data: json.RawMessage(`"oops"`)},
			wantErr: events.ErrInvalidEvent},
		{name: "slug is not a string", rules: rules, ev: events.Event{Type: "email.created", Data: json.RawMessage(`{"slug":7}`)},
			wantErr: events.ErrInvalidEvent, msg: "slug is a JSON number, want a string"},
		{name: "constant fallback needs no slug", rules: rules, ev: events.Event{Type: "invitation.created", Data: json.RawMessage(`{}`)},
			want: []string{"invitation-generic"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Route(tt.rules, tt.ev)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Route error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if !slices.Equal(workflows(got), tt.want) {
				t.Errorf("Route = %v, want %v", workflows(got), tt.want)
			}
		})
	}
}

func TestRouteDeduplicatesWorkflows(t *testing.T) {
	rules := mustCompose(t, mustParse(t, "test", `
rules:
  - match: email.created
    slugs: {invitation: invite}
  - match: email.created
    fallback: "{slug}"
    to: {topicKey: audit}
`))
	got, err := Route(rules, events.Event{Type: "email.created", Data: json.RawMessage(`{"slug":"invite"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(workflows(got), []string{"invite"}) {
		t.Fatalf("Route = %v, want [invite]", workflows(got))
	}
	got, err = Route(rules, events.Event{Type: "email.created", Data: json.RawMessage(`{"slug":"invitation"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"invite", "invitation"}; !slices.Equal(workflows(got), want) {
		t.Fatalf("Route = %v, want %v", workflows(got), want)
	}
}

func TestPatternMatches(t *testing.T) {
	tests := []struct {
		pattern, typ string
		want         bool
	}{
		{"user.created", "user.created", true},
		{"user.created", "user.updated", false},
		{"user.*", "user.created", true},
		{"user.*", "user", false},
		{"user.*", "user.a.b", false},
		{"*.created", "role.created", true},
		{"*", "a.b.c", true},
		{">", "a", true},
		{"user.>", "user.a.b", true},
		{"user.>", "user", false},
		{"*.*", "a.b", true},
		{"*.*", "a", false},
		{"a.b.c", "a.b", false},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.pattern)
		if err != nil {
			t.Fatalf("compile %q: %v", tt.pattern, err)
		}
		if got := p.matches(tt.typ); got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.pattern, tt.typ, got, tt.want)
		}
	}
}

func TestRulesString(t *testing.T) {
	rules := mustCompose(t, Defaults(), mustParse(t, "file routes.yaml", "rules:\n  - match: role.*\n    workflows: [r]\n    to: {topicKey: t}\n"))
	if rules.Len() != 4 {
		t.Errorf("Len = %d, want 4", rules.Len())
	}
	want := "4 rules in force from defaults (3 rules) + file routes.yaml (extend, 1 rule)"
	if rules.String() != want {
		t.Errorf("String = %q, want %q", rules.String(), want)
	}
}
