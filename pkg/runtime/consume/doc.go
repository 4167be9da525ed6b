// Package consume is the one consume runtime of the pipeline: it reads a
// durable JetStream pull consumer with a pool of workers, hands each message
// to a pure handler and applies the [Verdict] the handler returns in one
// place, by one set of rules, so the router and the novu-sink cannot drift
// apart. It is modelled on Watermill's message router (the handler decides,
// only the router acks or nacks) and watermill-nats' delay (a failure becomes
// NakWithDelay or a terminal signal), written on nats.go's jetstream package.
//
// The runtime owns:
//
//   - the pull loop: it pulls in batches sized to the free workers (or to
//     the batch size, with [WithBatch]), never cancels a pull in flight, and
//     asks a [Gate] (the sink's breaker and rate limiter) before every pull;
//   - the InProgress keep-alive, every AckWait/3, for as long as a message is
//     in hand: from its pull until it is settled, the handler call and the
//     settling included;
//   - settling ([Ack], [Retry], [DeadLetter], [Pause]): a dead letter is
//     published to stream DLQ, always sized to fit the server's max_payload
//     (see [events.WithMaxPayload]), and only after its PubAck is the source
//     terminated with TermWithReason, never acked; a Retry on the last allowed
//     delivery (Config.MaxDeliver) becomes a dead letter "gave up after N
//     deliveries: ..."; a Pause holds the message (keep-alive running, no NAK,
//     so its delivery count does not grow), stops consumption until then and
//     hands the same delivery to the handler again;
//   - the shutdown: [Runtime.Stop] stops pulling, lets the handlers finish
//     and settle within the caller's deadline, and NAKs the messages held or
//     not yet started so another instance gets them at once.
//
// The consumer's server-side MaxDeliver is the last resort behind the
// runtime's own limit: set it to [ServerMaxDeliver] of Config.MaxDeliver.
package consume
