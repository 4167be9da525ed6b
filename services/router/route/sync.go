package route

import (
	"fmt"
	"strings"

	"github.com/clerknovu/pipeline/pkg/events"
)

// OrganizationIDPlaceholder is the only placeholder of an organization topic
// template: the Clerk organization id (org_...).
const OrganizationIDPlaceholder = "{organization_id}"

// maxTopicKeyLen is the longest topic key Novu accepts.
const maxTopicKeyLen = 100

// Sync says which Clerk objects the router mirrors into Novu. The zero value
// syncs nothing.
type Sync struct {
	// Subscribers mirrors users as Novu subscribers: user.created and
	// user.updated upsert the subscriber with the profile [Build] makes for
	// triggers, user.deleted deletes it.
	Subscribers bool
	// OrganizationTopics, when set, mirrors each organization as a Novu topic
	// whose key is this template with [OrganizationIDPlaceholder] filled:
	// organizationMembership.created adds the member, .deleted removes it,
	// organization.deleted deletes the topic.
	OrganizationTopics string
}

// Enabled reports whether s syncs anything.
func (s Sync) Enabled() bool { return s.Subscribers || s.OrganizationTopics != "" }

// String describes s for logs and /readyz.
func (s Sync) String() string {
	var parts []string
	if s.Subscribers {
		parts = append(parts, "subscribers")
	}
	if s.OrganizationTopics != "" {
		parts = append(parts, "organization topics "+s.OrganizationTopics)
	}
	if len(parts) == 0 {
		return "off"
	}
	return strings.Join(parts, ", ")
}

// TopicKey returns the topic of organization orgID.
func (s Sync) TopicKey(orgID string) string {
	return strings.ReplaceAll(s.OrganizationTopics, OrganizationIDPlaceholder, orgID)
}

// validate checks the topic template: one {organization_id}, and a valid
// Novu topic key once filled with a Clerk organization id.
func (s Sync) validate() []string {
	tpl := s.OrganizationTopics
	if tpl == "" {
		return nil
	}
	if !strings.Contains(tpl, OrganizationIDPlaceholder) {
		return []string{fmt.Sprintf("sync: organizationTopics %q has no %s: every organization would share one topic", tpl, OrganizationIDPlaceholder)}
	}
	rest := strings.ReplaceAll(tpl, OrganizationIDPlaceholder, "")
	if strings.ContainsAny(rest, "{}") {
		return []string{fmt.Sprintf("sync: organizationTopics %q: the only placeholder is %s", tpl, OrganizationIDPlaceholder)}
	}
	sample := s.TopicKey("org_" + strings.Repeat("x", 27)) // a Clerk id: org_ + 27 base62
	if !validNovuKey(sample) || strings.Contains(sample, ".") || len(sample) > maxTopicKeyLen {
		return []string{fmt.Sprintf("sync: organizationTopics %q does not give a valid Novu topic key (letters, digits, '-', '_' and ':', at most %d characters with the organization id)", tpl, maxTopicKeyLen)}
	}
	return nil
}

// Sync returns what the rules in force mirror into Novu.
func (rs *Rules) Sync() Sync {
	if rs == nil {
		return Sync{}
	}
	return rs.sync
}

// The views of data that sync reads.
type (
	versionJSON struct {
		ID        string `json:"id"`
		UpdatedAt int64  `json:"updated_at"`
	}
	syncMembershipJSON struct {
		UpdatedAt      int64               `json:"updated_at"`
		Organization   *versionJSON        `json:"organization"`
		PublicUserData *publicUserDataJSON `json:"public_user_data"`
	}
)

// SyncCommands is NewCommander(ev, opts).SyncCommands(sync, src).
func SyncCommands(sync Sync, ev events.Event, src Source, opts BuildOptions) ([]events.SyncCommand, error) {
	return NewCommander(ev, opts).SyncCommands(sync, src)
}

// SyncCommands returns the sync commands of the event under sync (none when sync is
// off or ev's type changes nothing that is mirrored):
//
//   - user.created, user.updated: upsert the subscriber [Build] makes from ev;
//   - user.deleted: delete subscriber data.id;
//   - organizationMembership.created / .deleted: add / remove
//     data.public_user_data.user_id to / from the topic of data.organization.id;
//   - organization.deleted: delete the topic of data.id.
//
// Each command carries ev's timestamp and data.updated_at, by which the sink
// orders them, and an id from [events.SyncID], the same on every redelivery.
// It fails with [events.ErrInvalidEvent] when data does not have the shape,
// and with [ErrNoRecipient] when it names no user or organization.
func (c *Commander) SyncCommands(sync Sync, src Source) ([]events.SyncCommand, error) {
	ev := c.ev
	if !sync.Enabled() {
		return nil, nil
	}
	base := events.SyncCommand{SvixID: src.SvixID, EventType: ev.Type, EventTimestamp: ev.Timestamp, ReceivedAt: src.ReceivedAt}
	var cmd events.SyncCommand
	switch ev.Type {
	case "user.created", "user.updated":
		if !sync.Subscribers {
			return nil, nil
		}
		s, err := c.subscriber()
		if err != nil {
			return nil, err
		}
		var v versionJSON
		if err := decode(ev, &v); err != nil {
			return nil, err
		}
		cmd = base
		cmd.Kind, cmd.Subscriber, cmd.UpdatedAt = events.SyncSubscriberUpsert, s, v.UpdatedAt
	case "user.deleted":
		if !sync.Subscribers {
			return nil, nil
		}
		v, err := deletedObject(ev)
		if err != nil {
			return nil, err
		}
		cmd = base
		cmd.Kind, cmd.SubscriberID, cmd.UpdatedAt = events.SyncSubscriberDelete, v.ID, v.UpdatedAt
	case "organizationMembership.created", "organizationMembership.deleted":
		if sync.OrganizationTopics == "" {
			return nil, nil
		}
		var m syncMembershipJSON
		if err := decode(ev, &m); err != nil {
			return nil, err
		}
		switch {
		case m.Organization == nil || m.Organization.ID == "":
			return nil, fmt.Errorf("%w: %s has no data.organization.id", ErrNoRecipient, ev.Type)
		case m.PublicUserData == nil || m.PublicUserData.UserID == "":
			return nil, fmt.Errorf("%w: %s has no data.public_user_data.user_id", ErrNoRecipient, ev.Type)
		}
		cmd = base
		cmd.Kind = events.SyncTopicAdd
		if ev.Type == "organizationMembership.deleted" {
			cmd.Kind = events.SyncTopicRemove
		}
		cmd.SubscriberID, cmd.OrganizationID, cmd.UpdatedAt = m.PublicUserData.UserID, m.Organization.ID, m.UpdatedAt
		cmd.TopicKey = sync.TopicKey(m.Organization.ID)
	case "organization.deleted":
		if sync.OrganizationTopics == "" {
			return nil, nil
		}
		v, err := deletedObject(ev)
		if err != nil {
			return nil, err
		}
		cmd = base
		cmd.Kind, cmd.OrganizationID, cmd.TopicKey, cmd.UpdatedAt = events.SyncTopicDelete, v.ID, sync.TopicKey(v.ID), v.UpdatedAt
	default:
		return nil, nil
	}
	if src.SvixID == "" {
		return nil, fmt.Errorf("%w: no svix-id and no Nats-Msg-Id to derive sync ids from", events.ErrInvalidEvent)
	}
	cmd.ID = events.SyncID(src.SvixID, cmd.Kind, cmd.TopicKey+"/"+cmd.SubscriberKey())
	if err := cmd.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoRecipient, err)
	}
	return []events.SyncCommand{cmd}, nil
}

// deletedObject reads the id and updated_at of a deleted user or organization.
func deletedObject(ev events.Event) (versionJSON, error) {
	var v versionJSON
	if err := decode(ev, &v); err != nil {
		return v, err
	}
	if v.ID == "" {
		return v, fmt.Errorf("%w: %s has no data.id", ErrNoRecipient, ev.Type)
	}
	return v, nil
}
