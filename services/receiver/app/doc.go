// Package app wires the receiver: configuration from the environment
// ([LoadConfig]), and [Run], which connects to NATS, provisions the streams,
// and serves the webhook endpoint with /healthz, /readyz and /metrics on one
// port until its context ends, then shuts down gracefully.
//
// It is exported (not internal) so deploy/ can embed the receiver in one
// process with the other services.
package app
