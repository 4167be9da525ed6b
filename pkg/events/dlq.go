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
	// SourceStream, SourceSequence and SourceSubject point at the source
	// message, which stays readable in its stream for the stream's max age:
	// the way to redrive a dead letter whose body was truncated.
	SourceStream   string
	SourceSubject  string
	SourceSequence uint64
	// HTTPStatus and Response describe Novu's last answer, if any.
	HTTPStatus int
	Response   []byte
	// FirstFailure and LastFailure bound the failures, if known.
	FirstFailure, LastFailure time.Time
}

// MaxDLQReasonBytes bounds [DLQReasonHeader].
const MaxDLQReasonBytes = 1024

// DLQPublishReserve is the room [WithMaxPayload] leaves under the limit for
// the headers a JetStream publish adds (Nats-Expected-Stream and the like).
const DLQPublishReserve = 128

// MsgOption changes how [DeadLetter.Msg] builds a dead letter.
type MsgOption func(*msgConfig)

type msgConfig struct{ maxPayload int64 }

// WithMaxPayload makes the dead letter fit a server whose max_payload (the
// limit on headers plus body; nats.Conn.MaxPayload) is n, less
// [DLQPublishReserve]: when the whole copy would not fit, the body is cut to
// what fits and [DLQTruncatedHeader] holds the full body size; every header
// is kept, the reason and the pointer to the source (stream, sequence,
// subject) included. If even the headers do not fit, the source's own
// headers are dropped but for its ids (Nats-Msg-Id, svix-id, event type,
// workflow, transaction id) and trace context, and the body is empty.
// n <= 0 sets no limit.
func WithMaxPayload(n int64) MsgOption { return func(c *msgConfig) { c.maxPayload = n } }

// Msg builds the dead-letter message: the source body unchanged, the source
// headers (svix-id, event type, trace context...) kept, and the DLQ headers
// set; with [WithMaxPayload], sized to fit.
// The source's JetStream control headers (Nats-*: an expected stream, a
// rollup, a TTL) are dropped: they were meant for the source's stream and
// would make the DLQ refuse the message. Its Nats-Msg-Id is derived from the
// source's, so publishing it again after a lost ack stores it once.
func (d DeadLetter) Msg(body []byte, src nats.Header, opts ...MsgOption) *nats.Msg {
	var cfg msgConfig
	for _, o := range opts {
		o(&cfg)
	}
	h := CopyHeaders(src)
	srcID := src.Get(jetstream.MsgIDHeader)
	switch {
	case srcID != "":
		h.Set(jetstream.MsgIDHeader, "dlq."+d.Stage+"."+srcID)
	case d.SourceSequence > 0:
		h.Set(jetstream.MsgIDHeader, "dlq."+d.Stage+"."+d.SourceSubject+"."+strconv.FormatUint(d.SourceSequence, 10))
	}
	h.Set(DLQStageHeader, d.Stage)
	h.Set(DLQReasonHeader, oneLine(TruncateUTF8(d.Reason, MaxDLQReasonBytes)))
	if d.Deliveries > 0 {
		h.Set(DLQDeliveriesHeader, strconv.FormatUint(d.Deliveries, 10))
	}
	if d.SourceSubject != "" {
		h.Set(DLQSourceSubjectHeader, d.SourceSubject)
	}
	if d.SourceStream != "" {
		h.Set(DLQSourceStreamHeader, d.SourceStream)
	}
	if d.SourceSequence > 0 {
		h.Set(DLQSourceSequenceHeader, strconv.FormatUint(d.SourceSequence, 10))
	}
	if d.HTTPStatus > 0 {
		h.Set(DLQHTTPStatusHeader, strconv.Itoa(d.HTTPStatus))
	}
	if len(d.Response) > 0 {
		h.Set(DLQResponseHeader, oneLine(string(TruncateUTF8(d.Response, MaxDLQResponseBytes))))
	}
	if !d.FirstFailure.IsZero() {
		h.Set(DLQFirstFailureHeader, d.FirstFailure.UTC().Format(time.RFC3339Nano))
	}
	if !d.LastFailure.IsZero() {
		h.Set(DLQLastFailureHeader, d.LastFailure.UTC().Format(time.RFC3339Nano))
	}
	m := &nats.Msg{Subject: DLQSubject(d.Stage, d.Suffix), Header: h, Data: body}
	if cfg.maxPayload > 0 {
		fit(m, cfg.maxPayload-DLQPublishReserve)
	}
	return m
}

// keptWhenCut are the source headers a dead letter keeps when the source's
// headers alone do not fit.
var keptWhenCut = map[string]bool{
	jetstream.MsgIDHeader: true, SvixIDHeader: true, EventTypeHeader: true, WorkflowIDHeader: true,
	TransactionIDHeader: true, "traceparent": true, "tracestate": true,
}

// fit cuts m's body, then if need be its source headers, so that its
// headers and body take at most limit bytes.
func fit(m *nats.Msg, limit int64) {
	size := func() int64 { return int64(m.Size() - len(m.Subject) - len(m.Reply)) }
	if size() <= limit {
		return
	}
	full := len(m.Data)
	m.Header.Set(DLQTruncatedHeader, strconv.Itoa(full))
	room := limit - (size() - int64(len(m.Data)))
	if room >= 0 {
		m.Data = TruncateUTF8(m.Data, int(room))
		return
	}
	m.Data = nil
	for k := range m.Header {
		if !strings.HasPrefix(k, DLQHeaderPrefix) && !keptWhenCut[k] {
			delete(m.Header, k)
		}
	}
}

// TruncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence
// at the cut (it backs up at most three bytes, so bytes that are not UTF-8
// at all are cut at n). The result shares s's bytes.
func TruncateUTF8[S ~string | ~[]byte](s S, n int) S {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = n
	}
	return s[:cut]
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
