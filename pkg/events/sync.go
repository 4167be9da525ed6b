package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Sync command kinds: what the sink does in Novu, and the subject suffix of
// the command (novu.sync.<kind>).
const (
	// SyncSubscriberUpsert creates or updates a subscriber with its full
	// profile (user.created, user.updated).
	SyncSubscriberUpsert = "subscriber.upsert"
	// SyncSubscriberDelete deletes a subscriber, its preferences and its
	// topic subscriptions (user.deleted).
	SyncSubscriberDelete = "subscriber.delete"
	// SyncTopicAdd subscribes a subscriber to a topic, creating the topic on
	// first use (organizationMembership.created).
	SyncTopicAdd = "topic.add"
	// SyncTopicRemove unsubscribes a subscriber from a topic
	// (organizationMembership.deleted).
	SyncTopicRemove = "topic.remove"
	// SyncTopicDelete deletes a topic with its subscriptions (organization.deleted).
	SyncTopicDelete = "topic.delete"
)

// SyncKinds lists every sync command kind.
var SyncKinds = []string{SyncSubscriberUpsert, SyncSubscriberDelete, SyncTopicAdd, SyncTopicRemove, SyncTopicDelete}

// ErrInvalidSyncCommand reports a sync command that cannot be executed.
var ErrInvalidSyncCommand = errors.New("invalid sync command")

// SyncCommand is what the router publishes on novu.sync.<kind> (stream NOVU)
// and the sink turns into one Novu subscriber or topic call. Its JSON form,
// from [EncodeSyncCommand], is the message body.
type SyncCommand struct {
	// Kind is one of [SyncKinds].
	Kind string `json:"kind"`
	// ID is the deterministic command id, see [SyncID]; it is the message's Nats-Msg-Id.
	ID string `json:"id"`
	// Subscriber is the full profile of an upsert, the same the router
	// builds for a trigger's recipient.
	Subscriber *Subscriber `json:"subscriber,omitempty"`
	// SubscriberID is the subscriber of a delete, add or remove.
	SubscriberID string `json:"subscriberId,omitempty"`
	// TopicKey is the topic of an add, remove or topic delete.
	TopicKey string `json:"topicKey,omitempty"`
	// OrganizationID is the Clerk organization of a topic command.
	OrganizationID string `json:"organizationId,omitempty"`
	// SvixID is the svix-id of the source webhook.
	SvixID string `json:"svixId"`
	// EventType is the source Clerk event type.
	EventType string `json:"eventType"`
	// EventTimestamp is the source event's timestamp, Unix milliseconds: the
	// first key of the order in which the sink applies commands.
	EventTimestamp int64 `json:"eventTimestamp,omitempty"`
	// UpdatedAt is the source object's data.updated_at, Unix milliseconds:
	// the second key of that order.
	UpdatedAt int64 `json:"updatedAt,omitempty"`
	// ReceivedAt is when the receiver accepted the webhook, Unix milliseconds.
	ReceivedAt int64 `json:"receivedAt,omitempty"`
}

// SubscriberKey returns the subscriber the command is about.
func (c SyncCommand) SubscriberKey() string {
	if c.Subscriber != nil {
		return c.Subscriber.SubscriberID
	}
	return c.SubscriberID
}

// Validate reports what makes c unexecutable, wrapping [ErrInvalidSyncCommand].
func (c SyncCommand) Validate() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidSyncCommand, c.Kind, fmt.Sprintf(format, args...))
	}
	if !slices.Contains(SyncKinds, c.Kind) {
		return fmt.Errorf("%w: unknown kind %q", ErrInvalidSyncCommand, c.Kind)
	}
	if c.ID == "" {
		return fail("missing id")
	}
	switch c.Kind {
	case SyncSubscriberUpsert:
		if c.Subscriber == nil || c.Subscriber.SubscriberID == "" {
			return fail("no subscriber")
		}
	case SyncSubscriberDelete:
		if c.SubscriberID == "" {
			return fail("no subscriberId")
		}
	case SyncTopicAdd, SyncTopicRemove:
		if c.SubscriberID == "" || c.TopicKey == "" || c.OrganizationID == "" {
			return fail("needs subscriberId, topicKey and organizationId")
		}
	case SyncTopicDelete:
		if c.TopicKey == "" || c.OrganizationID == "" {
			return fail("needs topicKey and organizationId")
		}
	}
	return nil
}

// NovuSyncSubject returns novu.sync.<kind>, e.g. novu.sync.subscriber.upsert.
func NovuSyncSubject(kind string) (string, error) {
	if !slices.Contains(SyncKinds, kind) {
		return "", fmt.Errorf("%w: unknown kind %q", ErrInvalidSyncCommand, kind)
	}
	return NovuSyncSubjectPrefix + kind, nil
}

// SyncID derives the id of the sync command of kind for the webhook svixID
// about target (a subscriber id, or topic key and subscriber id). It is
// deterministic, so a redelivered event publishes the same id and NOVU's
// duplicate window drops the repeat; it is "sync_" plus 32 hex digits.
func SyncID(svixID, kind, target string) string {
	// The trailing "" keeps the NUL after target that the ids have always hashed.
	return hashID("sync_", svixID, kind, target, "")
}

// EncodeSyncCommand returns the JSON body of c, HTML characters unescaped.
func EncodeSyncCommand(c SyncCommand) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode sync command %s: %w", c.Kind, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// ParseSyncCommand decodes and validates a sync command body.
func ParseSyncCommand(body []byte) (SyncCommand, error) {
	var c SyncCommand
	if err := json.Unmarshal(body, &c); err != nil {
		return SyncCommand{}, fmt.Errorf("%w: %v", ErrInvalidSyncCommand, jsonReason(err))
	}
	if err := c.Validate(); err != nil {
		return SyncCommand{}, err
	}
	return c, nil
}
