// Package ops is what the clerknovu operator commands do, apart from their
// flags and output: listing, selecting, redriving and purging dead letters,
// replaying stored Clerk events through the router, and the summaries shown
// as a plan before anything changes. The cobra commands in package main only
// parse flags, call these functions and print.
//
// Everything here reads and writes JetStream through the contract in
// pkg/events: the Dlq-* headers say where a dead letter came from, and a
// republished message keeps its svix-id, transactionId and trace context
// while getting a fresh Nats-Msg-Id, so the duplicate window does not drop it
// and the dedupe on transactionId still drops a repeat.
package ops
