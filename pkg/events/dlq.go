package events

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxDLQResponseBytes bounds the copy of Novu's answer kept in [DLQResponseHeader].
const MaxDLQResponseBytes = 500

// DeadLetter describes why a message is given up. [DeadLetter.Msg] turns it into
// the message published on dlq.<stage>.<suffix>.
type DeadLetter struct {
	// Stage is [StageRouter] or [StageSink].
	Stage string
	// Suffix completes the subject: the event type (router) or workflow id (sink).
	Suffix string
	// Reason is one line saying why.
	Reason string
	// Deliveries is how many times the source message was delivered.
	Deliveries uint64
	// SourceSubject and SourceSequence identify the source message.
	SourceSubject  string
	SourceSequence uint64
	// HTTPStatus and Response describe Novu's last answer, if any.
	HTTPStatus int
	Response   []byte
	// FirstFailure and LastFailure bound the failures, if known.
	FirstFailure, LastFailure time.Time
}

// Msg builds the dead-letter message: the source body unchanged, the source
// headers (svix-id, event type, trace context...) kept, and the DLQ headers set.
// The source's JetStream control headers (Nats-*: an expected stream, a
// rollup, a TTL) are dropped: they were meant for the source's stream and
// would make the DLQ refuse the message. Its Nats-Msg-Id is derived from the
// source's, so publishing it again after a lost ack stores it once.
func (d DeadLetter) Msg(body []byte, src nats.Header) *nats.Msg {
	h := nats.Header{}
	for k, v := range src {
		if !strings.HasPrefix(k, "Nats-") {
			h[k] = append([]string(nil), v...)
		}
	}
	srcID := src.Get(jetstream.MsgIDHeader)
	switch {
	case srcID != "":
		h.Set(jetstream.MsgIDHeader, "dlq."+d.Stage+"."+srcID)
	case d.SourceSequence > 0:
		h.Set(jetstream.MsgIDHeader, "dlq."+d.Stage+"."+d.SourceSubject+"."+strconv.FormatUint(d.SourceSequence, 10))
	}
	h.Set(DLQStageHeader, d.Stage)
	h.Set(DLQReasonHeader, oneLine(d.Reason))
	if d.Deliveries > 0 {
		h.Set(DLQDeliveriesHeader, strconv.FormatUint(d.Deliveries, 10))
	}
	if d.SourceSubject != "" {
		h.Set(DLQSourceSubjectHeader, d.SourceSubject)
	}
	if d.SourceSequence > 0 {
		h.Set(DLQSourceSequenceHeader, strconv.FormatUint(d.SourceSequence, 10))
	}
	if d.HTTPStatus > 0 {
		h.Set(DLQHTTPStatusHeader, strconv.Itoa(d.HTTPStatus))
	}
	if len(d.Response) > 0 {
		h.Set(DLQResponseHeader, oneLine(truncateUTF8(d.Response, MaxDLQResponseBytes)))
	}
	if !d.FirstFailure.IsZero() {
		h.Set(DLQFirstFailureHeader, d.FirstFailure.UTC().Format(time.RFC3339Nano))
	}
	if !d.LastFailure.IsZero() {
		h.Set(DLQLastFailureHeader, d.LastFailure.UTC().Format(time.RFC3339Nano))
	}
	return &nats.Msg{Subject: DLQSubject(d.Stage, d.Suffix), Header: h, Data: body}
}

// truncateUTF8 cuts b to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	b = b[:n]
	for len(b) > 0 && !utf8.Valid(b) {
		b = b[:len(b)-1]
	}
	return string(b)
}

// oneLine replaces line breaks, which NATS headers cannot hold, with spaces.
func oneLine(s string) string {
	out := []byte(s)
	for i, c := range out {
		if c == '\r' || c == '\n' {
			out[i] = ' '
		}
	}
	return string(out)
}
