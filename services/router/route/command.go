package route

import (
	"bytes"
	"fmt"

	"github.com/clerknovu/pipeline/pkg/events"
)

// Source is what the transport knows about the message an event arrived in.
type Source struct {
	// SvixID identifies the webhook: the Svix-Id header, else the message's
	// Nats-Msg-Id. It seeds every command's transactionId, so it must be
	// stable across redeliveries and never empty.
	SvixID string
	// ReceivedAt is when the receiver accepted the webhook, Unix milliseconds (0 if unknown).
	ReceivedAt int64
}

// Commander makes the trigger and sync commands of one event, building the
// event's subscriber ([Build]) at most once for both. It is not safe for
// concurrent use.
type Commander struct {
	ev   events.Event
	opts BuildOptions
	sub  *events.Subscriber // built, or nil
	err  error              // Build's error, or nil
}

// NewCommander returns the Commander of ev, whose subscriber is built with opts.
func NewCommander(ev events.Event, opts BuildOptions) *Commander {
	return &Commander{ev: ev, opts: opts}
}

// subscriber returns Build(ev, opts), built on the first call.
func (c *Commander) subscriber() (*events.Subscriber, error) {
	if c.sub == nil && c.err == nil {
		s, err := Build(c.ev, c.opts)
		if err != nil {
			c.err = err
		} else {
			c.sub = &s
		}
	}
	return c.sub, c.err
}

// Commands is NewCommander(ev, opts).Commands(src, targets).
func Commands(ev events.Event, src Source, targets []Target, opts BuildOptions) ([]events.TriggerCommand, error) {
	return NewCommander(ev, opts).Commands(src, targets)
}

// Commands returns one trigger command per target: the recipient (the event's
// subscriber from [Build], built once, or the rule's fixed subscriber or topic),
// the payload the rule shaped or else the event's data, unchanged, and the transactionId
// [events.TransactionID](svixID, workflowID).
//
// It fails with [events.ErrInvalidEvent] when data is not a JSON object (Novu
// wants an object payload) or src has no svix id, and with [Build]'s errors.
func (c *Commander) Commands(src Source, targets []Target) ([]events.TriggerCommand, error) {
	ev := c.ev
	if src.SvixID == "" {
		return nil, fmt.Errorf("%w: no svix-id and no Nats-Msg-Id to derive transaction ids from", events.ErrInvalidEvent)
	}
	if d := bytes.TrimLeft(ev.Data, " \t\r\n"); len(d) == 0 || d[0] != '{' {
		return nil, fmt.Errorf("%w: %s data is not a JSON object", events.ErrInvalidEvent, ev.Type)
	}
	cmds := make([]events.TriggerCommand, 0, len(targets))
	for _, t := range targets {
		var to events.Recipient
		switch t.To.kind() {
		case RecipientEvent:
			s, err := c.subscriber()
			if err != nil {
				return nil, err
			}
			to.Subscriber = s
		case RecipientSubscriber:
			to.Subscriber = &events.Subscriber{SubscriberID: t.To.SubscriberID}
		case RecipientTopic:
			to.Topic = &events.Topic{TopicKey: t.To.TopicKey, Exclude: t.To.Exclude}
		}
		payload := ev.Data
		if t.Payload != nil {
			payload = t.Payload
		}
		cmd := events.TriggerCommand{
			WorkflowID:     t.WorkflowID,
			To:             to,
			Payload:        payload,
			TransactionID:  events.TransactionID(src.SvixID, t.WorkflowID),
			SvixID:         src.SvixID,
			EventType:      ev.Type,
			EventTimestamp: ev.Timestamp,
			ReceivedAt:     src.ReceivedAt,
		}
		if err := cmd.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrNoRecipient, t.WorkflowID, err)
		}
		cmds = append(cmds, cmd)
	}
	return cmds, nil
}
