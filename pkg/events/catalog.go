package events

// catalog is Clerk's webhook event catalog (see docs and
// shared/reference/clerk-events.md), family by family.
var catalog = []string{
	"user.created", "user.updated", "user.deleted",
	"session.created", "session.ended", "session.pending", "session.removed", "session.revoked",
	"organization.created", "organization.updated", "organization.deleted",
	"organizationMembership.created", "organizationMembership.updated", "organizationMembership.deleted",
	"organizationDomain.created", "organizationDomain.updated", "organizationDomain.deleted",
	"organizationInvitation.accepted", "organizationInvitation.created", "organizationInvitation.revoked",
	"email.created", "sms.created",
	"invitation.accepted", "invitation.created", "invitation.revoked",
	"waitlistEntry.created", "waitlistEntry.updated",
	"permission.created", "permission.updated", "permission.deleted",
	"role.created", "role.updated", "role.deleted",
	"subscription.created", "subscription.updated", "subscription.active", "subscription.pastDue",
	"subscriptionItem.created", "subscriptionItem.active", "subscriptionItem.updated", "subscriptionItem.canceled",
	"subscriptionItem.upcoming", "subscriptionItem.ended", "subscriptionItem.abandoned", "subscriptionItem.incomplete",
	"subscriptionItem.pastDue", "subscriptionItem.freeTrialEnding",
	"paymentAttempt.created", "paymentAttempt.updated",
}

// Catalog returns every event type Clerk documents, in catalog order (a new
// slice on each call). Clerk adds types over time: the pipeline tolerates
// types not listed here; the list is what samples, example rules and tests
// must cover.
func Catalog() []string { return append([]string(nil), catalog...) }

// InCatalog reports whether typ is an event type Clerk's catalog lists (see
// [Catalog]), without copying the catalog.
func InCatalog(typ string) bool {
	_, ok := catalogSubjects[typ]
	return ok
}

// catalogSubjects maps each catalog type to its clerk.<type> subject, built
// once: the receiver names the type and the subject of every webhook, and a
// catalog type then costs no copy, no concatenation and no token check
// (TestCatalogSubjects checks every entry).
var catalogSubjects = func() map[string]string {
	m := make(map[string]string, len(catalog))
	for _, t := range catalog {
		m[t] = ClerkSubjectPrefix + t
	}
	return m
}()
