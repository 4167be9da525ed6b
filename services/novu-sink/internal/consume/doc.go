// Package consume is the sink's handler on the consume runtime
// (pkg/runtime/consume): it turns trigger commands into Novu calls, one by one
// or in bulk (the runtime's batching option), and returns a verdict for each
// (Ack, Retry, DeadLetter, Pause) by the classification of package outcome.
// Its circuit breaker and client-side token bucket are the runtime's gate:
// no pulling while the breaker is open or Novu asked to wait. It never acks,
// NAKs or dead-letters a message itself: the runtime settles.
package consume
