package route

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clerknovu/pipeline/pkg/events"
)

// fixture reads testdata/events/<name>.json, a full Clerk envelope.
func fixture(t testing.TB, name string) (events.Event, []byte) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "events", name+".json"))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	ev, err := events.ParseEvent(body)
	if err != nil {
		t.Fatalf("parse fixture %s: %v", name, err)
	}
	return ev, body
}

// fixtureNames lists every fixture in testdata/events.
func fixtureNames(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)[:len(filepath.Base(f))-len(".json")]
	}
	return names
}

// catalog is every event type of the Clerk webhook catalog (clerk-events.md).
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

// TestFixturesCoverEveryFamily keeps the fixtures honest: every family of the
// catalog has at least one.
func TestFixturesCoverEveryFamily(t *testing.T) {
	have := map[string]bool{}
	for _, n := range fixtureNames(t) {
		ev, _ := fixture(t, n)
		have[family(ev.Type)] = true
	}
	for _, typ := range catalog {
		if !have[family(typ)] {
			t.Errorf("no fixture for the %s family", family(typ))
		}
	}
}

func family(typ string) string {
	for i := 0; i < len(typ); i++ {
		if typ[i] == '.' {
			return typ[:i]
		}
	}
	return typ
}
