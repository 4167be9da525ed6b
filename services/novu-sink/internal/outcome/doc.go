// Package outcome is the pure half of the Novu sink: it decodes Novu's answers
// (the {"data": ...} wrapper, the trigger status, error messages) and decides
// what happens to the message behind each one: deliver (ack), retry (NAK with a
// delay), dead-letter, or treat as an outage of the key or plan. It also parses
// Retry-After and the RateLimit-* headers and computes the retry backoff.
//
// It imports neither net/http nor nats: the transport hands it a status code,
// the few headers that matter, the body and the kind of transport error, and
// acts on the [Result].
package outcome
