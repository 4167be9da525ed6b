package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
)

// TriggerCommand is what the router publishes on novu.trigger.<workflowId> and the
// sink turns into one Novu trigger. Its JSON form is the message body.
type TriggerCommand struct {
	// WorkflowID is the Novu workflow trigger identifier (Novu's wire field "name").
	WorkflowID string `json:"workflowId"`
	// To is the recipient.
	To Recipient `json:"to"`
	// Payload is the Clerk event's data, raw and unchanged.
	Payload json.RawMessage `json:"payload"`
	// TransactionID is the deterministic Novu transactionId, see [TransactionID].
	TransactionID string `json:"transactionId"`
	// SvixID is the svix-id of the source webhook.
	SvixID string `json:"svixId"`
	// EventType is the source Clerk event type.
	EventType string `json:"eventType"`
	// EventTimestamp is the source event's timestamp, Unix milliseconds.
	EventTimestamp int64 `json:"eventTimestamp,omitempty"`
	// ReceivedAt is when the receiver accepted the webhook, Unix milliseconds.
	ReceivedAt int64 `json:"receivedAt,omitempty"`
}

// ErrInvalidCommand reports a trigger command that cannot be sent.
var ErrInvalidCommand = errors.New("invalid trigger command")

// Validate reports what makes c unsendable, wrapping [ErrInvalidCommand].
func (c TriggerCommand) Validate() error {
	switch {
	case ValidateToken(c.WorkflowID) != nil:
		return fmt.Errorf("%w: workflow id %q is not a single subject token", ErrInvalidCommand, c.WorkflowID)
	case c.TransactionID == "":
		return fmt.Errorf("%w: missing transactionId", ErrInvalidCommand)
	}
	return c.To.Validate()
}

// ParseCommand decodes and validates a trigger command body.
func ParseCommand(body []byte) (TriggerCommand, error) {
	var c TriggerCommand
	if err := json.Unmarshal(body, &c); err != nil {
		return TriggerCommand{}, fmt.Errorf("%w: %v", ErrInvalidCommand, jsonReason(err))
	}
	if err := c.Validate(); err != nil {
		return TriggerCommand{}, err
	}
	return c, nil
}

// Recipient is one Novu recipient: a subscriber (with its profile, so Novu
// creates or updates it) or a topic. Exactly one field is set.
type Recipient struct {
	// Subscriber is a person, Novu's SubscriberPayloadDto.
	Subscriber *Subscriber `json:"subscriber,omitempty"`
	// Topic is a Novu topic, for events about no person (role.created...).
	Topic *Topic `json:"topic,omitempty"`
}

// Validate reports a recipient that names no one, wrapping [ErrInvalidCommand].
func (r Recipient) Validate() error {
	switch {
	case r.Subscriber != nil && r.Topic != nil:
		return fmt.Errorf("%w: recipient is both a subscriber and a topic", ErrInvalidCommand)
	case r.Subscriber != nil && r.Subscriber.SubscriberID == "":
		return fmt.Errorf("%w: recipient has no subscriberId", ErrInvalidCommand)
	case r.Topic != nil && r.Topic.TopicKey == "":
		return fmt.Errorf("%w: recipient has no topicKey", ErrInvalidCommand)
	case r.Subscriber == nil && r.Topic == nil:
		return fmt.Errorf("%w: no recipient", ErrInvalidCommand)
	}
	return nil
}

// Subscriber is Novu's SubscriberPayloadDto with its wire field names. Empty
// fields are omitted, never sent as "" or null.
type Subscriber struct {
	SubscriberID string            `json:"subscriberId"`
	FirstName    string            `json:"firstName,omitempty"`
	LastName     string            `json:"lastName,omitempty"`
	Email        string            `json:"email,omitempty"`
	Phone        string            `json:"phone,omitempty"`
	Avatar       string            `json:"avatar,omitempty"`
	Locale       string            `json:"locale,omitempty"`
	Timezone     string            `json:"timezone,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
}

// Topic is Novu's TopicPayloadDto without its type discriminator, which the sink adds.
type Topic struct {
	TopicKey string   `json:"topicKey"`
	Exclude  []string `json:"exclude,omitempty"`
}

// TransactionID derives the Novu transactionId of the trigger of workflowID for
// the webhook svixID. It is deterministic, so a redelivered event or a retried
// trigger always carries the same id and Novu drops the repeat; it is "txn_"
// plus 32 hex digits, safe as a Nats-Msg-Id and as an Idempotency-Key.
func TransactionID(svixID, workflowID string) string {
	return hashID("txn_", svixID, workflowID)
}

// hashID returns prefix plus the first 32 hex digits of the SHA-256 of parts
// joined by NUL bytes (none after the last part).
func hashID(prefix string, parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	return prefix + hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// LogValue logs a subscriber as a group of its non-empty fields.
func (s Subscriber) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 9)
	for _, f := range [...]struct{ k, v string }{
		{"subscriberId", s.SubscriberID}, {"firstName", s.FirstName}, {"lastName", s.LastName},
		{"email", s.Email}, {"phone", s.Phone}, {"avatar", s.Avatar}, {"locale", s.Locale}, {"timezone", s.Timezone},
	} {
		if f.v != "" {
			attrs = append(attrs, slog.String(f.k, f.v))
		}
	}
	if len(s.Data) > 0 {
		data := make([]any, 0, 2*len(s.Data))
		for k, v := range s.Data {
			data = append(data, slog.String(k, v))
		}
		attrs = append(attrs, slog.Group("data", data...))
	}
	return slog.GroupValue(attrs...)
}
