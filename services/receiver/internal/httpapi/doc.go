// Package httpapi is the receiver's HTTP transport: it reads a Clerk webhook
// (Svix delivery) with a size cap, verifies its signature on the raw bytes
// with package verify, checks the envelope with events.ParseEvent, publishes
// the bytes unchanged to clerk.<type> with Nats-Msg-Id = svix-id, and answers
// 2xx only once JetStream has acknowledged the message.
//
// Many webhooks can be in flight at once: each request publishes
// asynchronously ([Publisher] is jetstream.JetStream's PublishMsgAsync) and
// waits on its own PubAckFuture, so requests do not serialize on one publish
// round trip.
//
// Everything the headers can refuse (method, missing or oversize signature
// headers, a timestamp out of tolerance, a declared length over the cap) is
// refused before a byte of the body is read. The body is then read within one
// of MaxInFlight slots, into a pooled buffer that grows as bytes arrive (never
// sized from the declared length), up to MaxBodyBytes.
//
// Every failure maps to one status code in one function (statusFor):
//
//	405 method other than POST
//	413 body over the limit (answered, then a bounded amount drained, so the client reads it)
//	401 missing or bad signature, timestamp out of tolerance
//	400 body not a Clerk envelope, an event type that is not a safe subject,
//	    a signature header too long, a body that could not be read
//	503 NATS or the stream unavailable, publish timeout, too many pending or
//	    in flight (with Retry-After)
package httpapi
