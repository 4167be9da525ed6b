// Package verify checks Svix webhook signatures on the raw request bytes, with
// no transport attached: it imports neither net/http nor nats, and takes the
// current time as an argument so tests use a fixed clock.
//
// A [Verifier] holds one or more whsec_ signing secrets (several during a
// rotation). [Verifier.Verify] accepts a delivery when its timestamp is within
// [Tolerance] of now and one of the space-separated v1 signatures it carries
// matches the HMAC-SHA256 of "<id>.<timestamp>.<body>" under any of the
// secrets. The HMAC itself is computed by the Svix library
// (github.com/svix/svix-webhooks/go), so the signed content is exactly what
// Svix signs.
//
// Every error wraps one of the sentinel errors below, to be matched with
// errors.Is. Their messages are short and never contain a secret or the
// expected signature, so a transport can return them to the caller.
package verify
