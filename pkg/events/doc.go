// Package events is the one place that names everything on the wire between the
// receiver, the router and the Novu sink: JetStream subjects, stream and durable
// consumer names, header keys, the Clerk envelope and the trigger command the
// router hands to the sink.
//
// The pipeline is
//
//	Svix ──HTTP──▶ receiver ──clerk.<type>──▶ router ──novu.trigger.<workflow>──▶ novu-sink ──HTTP──▶ Novu
//	                                              │                                   │
//	                                              └────────── dlq.<stage>.<...> ◀─────┘
//
// Deduplication is carried end to end: the svix-id becomes the Nats-Msg-Id of
// the clerk.<type> message (stream CLERK, duplicate window over Svix's whole
// retry schedule), then [TransactionID] derives a deterministic Novu
// transactionId from the svix-id and the workflow id, which is also the
// Nats-Msg-Id of the trigger command in stream NOVU.
//
// Services never write a subject or header literal; they call the functions
// and constants here. Stream and consumer configurations are functions so the
// services and the tests provision exactly the same thing.
package events
