package consume

import (
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrMisconfigured reports a runtime built without what it needs.
var ErrMisconfigured = errors.New("consume runtime misconfigured")

// ErrShutdownDeadline reports handlers still running when the shutdown
// deadline passed; their messages come back after the ack wait.
var ErrShutdownDeadline = errors.New("handlers still running at the shutdown deadline")

// permanentCodes are the JetStream API error codes of a message the stream
// will never take.
var permanentCodes = map[jetstream.ErrorCode]bool{
	jetstream.JSErrCodeBadRequest:                  true,
	jetstream.JSErrCodeStreamMessageExceedsMaximum: true, // the stream's max_msg_size
}

// IsPermanent reports an error that cannot succeed on retry: nats' "maximum
// payload exceeded" (the message is larger than the server's max_payload)
// and the JetStream API errors of a message the stream will never take (a
// bad request, a message over the stream's max_msg_size).
// Everything else (timeouts, no responders, a lost connection, a stream not
// found yet) is transient.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadHeaderMsg) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return permanentCodes[apiErr.ErrorCode]
	}
	return false
}
