// Package route is the router's pure logic: the routing rules (a YAML document
// of rules, the defaults that reproduce the reference integration, and how
// layers of rules combine), matching a Clerk event to its Novu workflows with
// [Route], building the Novu subscriber an event is about with [Build], and
// turning both into [events.TriggerCommand]s with [Commands].
//
// It imports neither net/http nor nats: every function takes its inputs as
// values and returns errors that the transport maps to ack, retry or
// dead-letter with errors.Is:
//
//   - [ErrNoRoute]: no rule routes the event; it is acked and counted as skipped.
//   - [ErrNoRecipient], [ErrInvalidWorkflow] and [events.ErrInvalidEvent]: the
//     event can never be delivered as it is; it goes to the dead-letter stream.
//   - [ErrInvalidRules]: a rules document is rejected when it is loaded.
package route
