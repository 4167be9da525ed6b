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
// Every failure maps to one status code in one function (statusFor):
//
//	405 method other than POST
//	413 body over the limit
//	401 missing or bad signature, timestamp out of tolerance
//	400 body not a Clerk envelope, or an event type that is not a safe subject
//	503 NATS or the stream unavailable, publish timeout, too many pending (with Retry-After)
package httpapi
