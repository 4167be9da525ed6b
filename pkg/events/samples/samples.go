package samples

import (
	"bytes"
	"embed"
	"strings"
	"sync"
)

// Sample is one Clerk webhook body.
type Sample struct {
	// Name is the event type ("user.created") or type/variant
	// ("email.created/magic_link_sign_in").
	Name string
	// Type is the envelope's type field, e.g. email.created.
	Type string
	// Slug is the template slug of email.created and sms.created samples
	// (data.slug), "" for other types.
	Slug string
	// Description says in one line what the sample shows.
	Description string
	// Body is the envelope, byte for byte as Clerk sends it. Each call of [All]
	// or [Get] returns a fresh copy, so callers may modify it.
	Body []byte
}

//go:embed events
var files embed.FS

// entry describes one embedded file, events/<name>.json.
type entry struct {
	name, slug, description string
}

// catalog lists every sample in the order of Clerk's event catalog, each base
// type followed by its variants. The tests check that every entry has a file,
// every file an entry, and that each body holds what its description claims.
var catalog = []entry{
	{"user.created", "", "a user signed up with email, password and phone; primary email is email_addresses[0]"},
	{"user.created/unicode-bigint", "", "accents, CJK and emoji in names; metadata with integers beyond 2^53, 1.0000000000000001 and \\u003c escapes"},
	{"user.created/phone-only", "", "signed up with a phone number only: no email address, null names"},
	{"user.updated", "", "the user changed their last name"},
	{"user.updated/non-primary-first", "", "a second address became primary: email_addresses[0] is the old, non-primary one"},
	{"user.deleted", "", "a deleted user: only id, object, deleted and external_id"},

	{"session.created", "", "a sign-in; data.user is the full user"},
	{"session.created/no-user", "", "malformed: user_id and user are both null, so the event names no recipient"},
	{"session.ended", "", "the user signed out"},
	{"session.pending", "", "a session waiting for a required task (no latest_activity)"},
	{"session.removed", "", "the session was removed from the client"},
	{"session.revoked", "", "the session was revoked from the backend; data.user present"},
	{"session.revoked/null-user", "", "a revoked session whose data.user is null (user_id still set)"},

	{"organization.created", "", "a new organization; created_by is the creator"},
	{"organization.updated", "", "the organization's members count and metadata changed"},
	{"organization.deleted", "", "a deleted organization: id, slug, deleted"},

	{"organizationMembership.created", "", "a user joined an organization; public_user_data.identifier is an email"},
	{"organizationMembership.created/phone-identifier", "", "a member whose identifier is a phone number, with null names and username"},
	{"organizationMembership.updated", "", "a member was promoted to admin"},
	{"organizationMembership.deleted", "", "a member left the organization"},

	{"organizationDomain.created", "", "a domain was added, not yet verified"},
	{"organizationDomain.updated", "", "the domain was verified through affiliation_email_address"},
	{"organizationDomain.deleted", "", "a deleted domain: id, object, deleted"},

	{"organizationInvitation.accepted", "", "the invitee accepted and became user_id"},
	{"organizationInvitation.created", "", "an admin invited an email address; inviter in public_inviter_data"},
	{"organizationInvitation.created/empty-email", "", "malformed: an invitation whose email_address is empty"},
	{"organizationInvitation.revoked", "", "the invitation was revoked"},

	{"email.created", "verification_code", "a verification code email Clerk delivers itself (delivered_by_clerk true)"},
	{"email.created/verification_code", "verification_code", "a verification code email for the app to deliver"},
	{"email.created/reset_password_code", "reset_password_code", "a password reset code"},
	{"email.created/magic_link_sign_in", "magic_link_sign_in", "a sign-in magic link (\\u0026 in the URL)"},
	{"email.created/magic_link_sign_up", "magic_link_sign_up", "a sign-up magic link; user_id null, the user does not exist yet"},
	{"email.created/magic_link_user_profile", "magic_link_user_profile", "a link to verify an address added in the user profile"},
	{"email.created/invitation", "invitation", "an instance invitation; user_id and email_address_id null"},
	{"email.created/organization_invitation", "organization_invitation", "an organization invitation; user_id and email_address_id null"},
	{"email.created/organization_invitation_accepted", "organization_invitation_accepted", "tells the inviter that the invitee joined"},
	{"email.created/passkey_added", "passkey_added", "a passkey was added"},
	{"email.created/passkey_removed", "passkey_removed", "a passkey was removed"},
	{"email.created/password_changed", "password_changed", "the password was changed"},
	{"email.created/password_removed", "password_removed", "the password was removed"},
	{"email.created/primary_email_address_changed", "primary_email_address_changed", "the primary address changed; sent to the previous one"},
	{"email.created/waitlist_confirmation", "waitlist_confirmation", "a waitlist sign-up confirmation; user_id and email_address_id null"},
	{"email.created/waitlist_invitation", "waitlist_invitation", "invited off the waitlist; user_id and email_address_id null"},
	{"email.created/new_device_sign_in", "new_device_sign_in", "a slug not in Clerk's documentation yet, to test tolerance"},

	{"sms.created", "verification_code", "a verification code SMS Clerk delivers itself; created_at, empty data"},
	{"sms.created/verification_code", "verification_code", "a verification code SMS for the app to deliver; created_at_ms, data {app, otp_code}"},
	{"sms.created/reset_password_code", "reset_password_code", "a password reset code SMS for the app to deliver"},

	{"invitation.accepted", "", "an instance invitation was accepted"},
	{"invitation.created", "", "an instance invitation was sent to an email address"},
	{"invitation.revoked", "", "an instance invitation was revoked"},

	{"waitlistEntry.created", "", "someone joined the waitlist"},
	{"waitlistEntry.updated", "", "a waitlist entry was invited; data.invitation is set"},

	{"permission.created", "", "a custom permission was created"},
	{"permission.updated", "", "a custom permission was renamed"},
	{"permission.deleted", "", "a deleted permission: id, object, deleted"},

	{"role.created", "", "a custom role with one permission"},
	{"role.updated", "", "a permission was added to the role"},
	{"role.deleted", "", "a deleted role: id, object, slug null, deleted"},

	{"subscription.created", "", "a user subscribed to the Pro plan"},
	{"subscription.created/org-payer", "", "an organization subscribed: payer.user_id, first_name and last_name are \"\""},
	{"subscription.updated", "", "an upgrade: the current item canceled, the next one upcoming"},
	{"subscription.active", "", "the subscription became active"},
	{"subscription.pastDue", "", "a renewal payment failed; system-initiated (empty client_ip and user_agent)"},

	{"subscriptionItem.created", "", "a subscription item was created"},
	{"subscriptionItem.active", "", "a subscription item became active"},
	{"subscriptionItem.updated", "", "a subscription item changed; system-initiated"},
	{"subscriptionItem.canceled", "", "a subscription item will end at the end of its period"},
	{"subscriptionItem.upcoming", "", "a subscription item scheduled to start next period"},
	{"subscriptionItem.ended", "", "a subscription item's period ended"},
	{"subscriptionItem.abandoned", "", "an upcoming item superseded before it started"},
	{"subscriptionItem.incomplete", "", "a subscription item awaiting payment action"},
	{"subscriptionItem.pastDue", "", "a payment on the item is overdue; system-initiated"},
	{"subscriptionItem.freeTrialEnding", "", "a free trial ends soon (is_free_trial true); system-initiated"},

	{"paymentAttempt.created", "", "a checkout payment attempt is pending"},
	{"paymentAttempt.updated", "", "a recurring payment failed: card_declined; system-initiated"},

	{"agent.created", "", "an event type not in Clerk's catalog, to test tolerance of new types"},
}

// load reads every embedded body once.
var load = sync.OnceValue(func() []Sample {
	out := make([]Sample, 0, len(catalog))
	for _, e := range catalog {
		typ, _, _ := strings.Cut(e.name, "/")
		body, _ := files.ReadFile(path(e.name)) // a missing file leaves Body empty; the tests fail on it
		out = append(out, Sample{Name: e.name, Type: typ, Slug: e.slug, Description: e.description, Body: body})
	}
	return out
})

// path is the embedded file of the sample name.
func path(name string) string { return "events/" + name + ".json" }

// clone returns s with a copy of its body.
func clone(s Sample) Sample {
	s.Body = bytes.Clone(s.Body)
	return s
}

// All returns every sample in a stable order: Clerk's catalog order, each type
// followed by its variants, and the unknown type last.
func All() []Sample {
	all := load()
	out := make([]Sample, len(all))
	for i, s := range all {
		out[i] = clone(s)
	}
	return out
}

// Get returns the sample called name: an event type such as "user.created" or
// a variant such as "email.created/magic_link_sign_in".
func Get(name string) (Sample, bool) {
	for _, s := range load() {
		if s.Name == name {
			return clone(s), true
		}
	}
	return Sample{}, false
}

// Names returns the name of every sample, in the order of [All].
func Names() []string {
	all := load()
	out := make([]string, len(all))
	for i, s := range all {
		out[i] = s.Name
	}
	return out
}
