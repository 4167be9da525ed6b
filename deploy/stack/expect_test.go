package stack_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events/samples"
)

// outcome is what the pipeline must do with one sample under the default rules.
type outcome struct {
	// workflow is the Novu workflow triggered, "" when nothing is.
	workflow string
	// subscriberID and email are the recipient the trigger names.
	subscriberID, email string
	// deadLetter reports an event the router must dead-letter with a reason.
	deadLetter bool
}

// emailWorkflows is the reference integration's slug → workflow map, written
// out here rather than imported so the test checks the router against an
// independent copy.
var emailWorkflows = map[string]string{
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

// expected derives the outcome of s from the default rules: user.created →
// user-created for the user with their primary email; session.created →
// recent-login-v2 for data.user_id (dead-lettered when the event names no
// user); email.created → its slug's workflow (email-<slug> for an unknown
// slug, '_' turned into '-') for data.user_id, or the recipient address when user_id is null;
// every other type → nothing.
func expected(t *testing.T, s samples.Sample) outcome {
	t.Helper()
	var env struct {
		Data struct {
			ID                    string  `json:"id"`
			UserID                *string `json:"user_id"`
			ToEmailAddress        string  `json:"to_email_address"`
			Slug                  string  `json:"slug"`
			PrimaryEmailAddressID string  `json:"primary_email_address_id"`
			EmailAddresses        []struct {
				ID           string `json:"id"`
				EmailAddress string `json:"email_address"`
			} `json:"email_addresses"`
			User *struct {
				PrimaryEmailAddressID string `json:"primary_email_address_id"`
				EmailAddresses        []struct {
					ID           string `json:"id"`
					EmailAddress string `json:"email_address"`
				} `json:"email_addresses"`
			} `json:"user"`
		} `json:"data"`
	}
	if err := json.Unmarshal(s.Body, &env); err != nil {
		t.Fatalf("sample %s: %v", s.Name, err)
	}
	d := env.Data
	switch s.Type {
	case "user.created":
		o := outcome{workflow: "user-created", subscriberID: d.ID}
		for _, e := range d.EmailAddresses {
			if e.ID == d.PrimaryEmailAddressID {
				o.email = e.EmailAddress
			}
		}
		return o
	case "session.created":
		if d.UserID == nil || *d.UserID == "" {
			return outcome{workflow: "recent-login-v2", deadLetter: true}
		}
		o := outcome{workflow: "recent-login-v2", subscriberID: *d.UserID}
		if d.User != nil {
			for _, e := range d.User.EmailAddresses {
				if e.ID == d.User.PrimaryEmailAddressID {
					o.email = e.EmailAddress
				}
			}
		}
		return o
	case "email.created":
		wf, ok := emailWorkflows[d.Slug]
		if !ok {
			wf = "email-" + strings.ReplaceAll(d.Slug, "_", "-")
		}
		o := outcome{workflow: wf, subscriberID: d.ToEmailAddress, email: d.ToEmailAddress}
		if d.UserID != nil && *d.UserID != "" {
			o.subscriberID = *d.UserID
		}
		return o
	}
	return outcome{}
}
