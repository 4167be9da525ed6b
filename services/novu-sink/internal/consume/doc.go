// Package consume is the sink's transport: a fetch loop over the durable pull
// consumer on stream NOVU that turns trigger commands into Novu calls, behind
// a circuit breaker (no fetching while it is open) and a client-side token
// bucket, in bulk when a backlog waits, and that acks, NAKs with a delay or
// dead-letters each message by the verdict of package outcome. Only this
// package acks.
package consume
