// Package novu is the sink's Novu client, plain net/http without an SDK: it
// encodes trigger commands into Novu's wire format (name, to, payload,
// transactionId; payload bytes unchanged), sends single and bulk triggers with
// the ApiKey authorization, an Idempotency-Key, a per-request timeout and the
// trace context, and returns the raw answer for package outcome to classify.
package novu
