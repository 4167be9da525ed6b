package consume

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "max payload, wrapped", err: fmt.Errorf("publish novu.trigger.x: %w", nats.ErrMaxPayload), want: true},
		{name: "bad header", err: nats.ErrBadHeaderMsg, want: true},
		{name: "stream's max_msg_size", err: fmt.Errorf("nats: %w", &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamMessageExceedsMaximum, Code: 400}), want: true},
		{name: "bad request", err: &jetstream.APIError{ErrorCode: jetstream.JSErrCodeBadRequest, Code: 400}, want: true},
		{name: "stream not found yet", err: jetstream.ErrStreamNotFound, want: false},
		{name: "timeout", err: nats.ErrTimeout, want: false},
		{name: "no responders", err: nats.ErrNoResponders, want: false},
		{name: "any other", err: errors.New("connection reset"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestVerdicts(t *testing.T) {
	cause := errors.New("novu 503")
	until := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		v          Verdict
		wantKind   Kind
		wantReason string
	}{
		{name: "ack", v: Ack(), wantKind: KindAck},
		{name: "retry", v: Retry(time.Second, cause), wantKind: KindRetry, wantReason: "novu 503"},
		{name: "dead letter", v: DeadLetter("novu 422: workflow_not_found"), wantKind: KindDeadLetter, wantReason: "novu 422: workflow_not_found"},
		{name: "pause", v: Pause(until, cause), wantKind: KindPause, wantReason: "novu 503"},
		{name: "from nil", v: FromError(nil), wantKind: KindAck},
		{name: "from a permanent error", v: FromError(nats.ErrMaxPayload), wantKind: KindDeadLetter, wantReason: nats.ErrMaxPayload.Error()},
		{name: "from a transient error", v: FromError(cause), wantKind: KindRetry, wantReason: "novu 503"},
		{name: "zero: no verdict, settled as a retry", v: Verdict{}, wantKind: 0, wantReason: errNoVerdict.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.v.Kind() != tt.wantKind || tt.v.Reason() != tt.wantReason {
				t.Errorf("kind %v reason %q, want %v %q", tt.v.Kind(), tt.v.Reason(), tt.wantKind, tt.wantReason)
			}
		})
	}
	if d := DeadLetter("x").WithDetails(Details{HTTPStatus: 400}).Details(); d.HTTPStatus != 400 {
		t.Errorf("details lost: %+v", d)
	}
	if l := Ack().WithLabel("skipped").Label(); l != "skipped" {
		t.Errorf("label %q", l)
	}
}

func TestServerMaxDeliver(t *testing.T) {
	if got := ServerMaxDeliver(10); got != 10+MaxDeliverHeadroom {
		t.Errorf("ServerMaxDeliver(10) = %d", got)
	}
	if got := ServerMaxDeliver(0); got != DefaultMaxDeliver+MaxDeliverHeadroom {
		t.Errorf("ServerMaxDeliver(0) = %d", got)
	}
}
