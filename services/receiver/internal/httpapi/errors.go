package httpapi

import (
	"errors"
	"net/http"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/receiver/internal/verify"
	"github.com/nats-io/nats.go"
)

// Transport errors, matched by [statusFor].
var (
	errMethodNotAllowed = errors.New("method not allowed, use POST")
	errTooLarge         = errors.New("body too large")
	errReadBody         = errors.New("cannot read body")
	errPublishTimeout   = errors.New("no acknowledgement from JetStream in time")
	errNotConnected     = errors.New("nats not connected")
	errBusy             = errors.New("too many webhooks in flight")
	errClientGone       = errors.New("connection closed or broken")
)

// outcome labels receiver_webhooks_total.
type outcome int

const (
	outcomeAccepted outcome = iota
	outcomeDuplicate
	outcomeBadSignature
	outcomeBadRequest
	outcomeTooLarge
	outcomeUnavailable
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"accepted", "duplicate", "bad_signature", "bad_request", "too_large", "unavailable"}

func (o outcome) String() string { return outcomeNames[o] }

// statusFor maps the error of one request to its HTTP status and metric
// outcome. Anything not known to be the caller's fault is 503, so Svix
// retries it: nothing is ever answered 2xx without a PubAck.
func statusFor(err error) (int, outcome) {
	switch {
	case err == nil:
		return http.StatusOK, outcomeAccepted
	case errors.Is(err, errMethodNotAllowed):
		return http.StatusMethodNotAllowed, outcomeBadRequest
	case errors.Is(err, errTooLarge), errors.Is(err, nats.ErrMaxPayload):
		return http.StatusRequestEntityTooLarge, outcomeTooLarge
	case errors.Is(err, verify.ErrHeaderTooLong):
		return http.StatusBadRequest, outcomeBadRequest
	case errors.Is(err, verify.ErrMissingHeaders), errors.Is(err, verify.ErrInvalidTimestamp),
		errors.Is(err, verify.ErrTimestampTooOld), errors.Is(err, verify.ErrTimestampTooNew),
		errors.Is(err, verify.ErrNoMatchingSignature):
		return http.StatusUnauthorized, outcomeBadSignature
	case errors.Is(err, events.ErrInvalidEvent), errors.Is(err, events.ErrInvalidSubject), errors.Is(err, errReadBody):
		return http.StatusBadRequest, outcomeBadRequest
	default:
		return http.StatusServiceUnavailable, outcomeUnavailable
	}
}
