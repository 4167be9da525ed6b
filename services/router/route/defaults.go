package route

// DefaultsSource names the built-in rules in messages.
const DefaultsSource = "defaults"

// Defaults returns the built-in rules. They reproduce the reference
// integration exactly: session.created and user.created each to one workflow,
// email.created by data.slug with "email-{slug}" for a slug it does not know,
// and every other event type unrouted.
func Defaults() Layer {
	return Layer{
		Source: DefaultsSource,
		Mode:   ModeReplace,
		Rules: []Rule{
			{Match: "session.created", Workflows: []string{"recent-login-v2"}},
			{Match: "user.created", Workflows: []string{"user-created"}},
			{Match: "email.created", Slugs: DefaultEmailSlugs(), Fallback: "email-" + SlugPlaceholder},
		},
	}
}

// DefaultEmailSlugs returns the reference integration's email.created slug
// to workflow map (a new map on every call).
func DefaultEmailSlugs() map[string]string {
	return map[string]string{
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
	}
}
