package route

import "errors"

// ErrNoRoute reports an event that no rule routes: its type matches no rule,
// the matching rule drops it, or the rule maps slugs and has none for the
// event's slug. It is not a failure: the transport acks the event and counts
// it as skipped.
var ErrNoRoute = errors.New("no route")

// ErrNoRecipient reports a routed event that names nobody to notify, with the
// rule asking for the event's own recipient. The event is dead-lettered.
var ErrNoRecipient = errors.New("no recipient")

// ErrInvalidWorkflow reports a workflow id that a rule's fallback template
// could not turn into a valid subject token for this event (an unknown slug
// holding a dot or a space, or no slug at all). The event is dead-lettered.
var ErrInvalidWorkflow = errors.New("invalid workflow id")

// ErrInvalidRules reports a rules document that cannot be loaded: a YAML error,
// an unknown field, or a rule that fails validation. The message names the
// source, the rule's position and what to fix.
var ErrInvalidRules = errors.New("invalid routing rules")
