package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
)

// DeadLetter is one message of stream DLQ, read from its Dlq-* headers.
type DeadLetter struct {
	Seq        uint64    `json:"seq"`
	Stage      string    `json:"stage"`
	Subject    string    `json:"subject"`
	Type       string    `json:"type"`
	Workflow   string    `json:"workflow,omitempty"`
	Reason     string    `json:"reason"`
	SvixID     string    `json:"svix_id"`
	Time       time.Time `json:"time"`
	Deliveries int       `json:"deliveries"`
	Truncated  bool      `json:"truncated"`
	// FullSize is the source body's size when Truncated.
	FullSize       int    `json:"full_size,omitempty"`
	HTTPStatus     int    `json:"http_status,omitempty"`
	TransactionID  string `json:"transaction_id,omitempty"`
	SourceStream   string `json:"source_stream"`
	SourceSubject  string `json:"source_subject"`
	SourceSequence uint64 `json:"source_sequence,omitempty"`
	RedriveCount   int    `json:"redrive_count,omitempty"`

	// Header and Body are the stored message; Body is nil when listed by
	// [ListDeadLetters], which reads headers only ([Redrive] reads it).
	Header nats.Header `json:"-"`
	Body   []byte      `json:"-"`
}

// ReadDeadLetter reads a DLQ message.
func ReadDeadLetter(seq uint64, subject string, t time.Time, h nats.Header, body []byte) DeadLetter {
	d := DeadLetter{
		Seq: seq, Subject: subject, Time: t, Header: h, Body: body,
		Stage:         h.Get(events.DLQStageHeader),
		Type:          h.Get(events.EventTypeHeader),
		Workflow:      h.Get(events.WorkflowIDHeader),
		Reason:        h.Get(events.DLQReasonHeader),
		SvixID:        h.Get(events.SvixIDHeader),
		TransactionID: h.Get(events.TransactionIDHeader),
		SourceStream:  h.Get(events.DLQSourceStreamHeader),
		SourceSubject: h.Get(events.DLQSourceSubjectHeader),
	}
	d.Deliveries, _ = strconv.Atoi(h.Get(events.DLQDeliveriesHeader))
	d.HTTPStatus, _ = strconv.Atoi(h.Get(events.DLQHTTPStatusHeader))
	d.RedriveCount, _ = strconv.Atoi(h.Get(events.RedriveCountHeader))
	d.SourceSequence, _ = strconv.ParseUint(h.Get(events.DLQSourceSequenceHeader), 10, 64)
	if v := h.Get(events.DLQTruncatedHeader); v != "" {
		d.Truncated = true
		d.FullSize, _ = strconv.Atoi(v)
	}
	// dlq.<stage>.<suffix>: the suffix is the event type (router) or the
	// workflow id (sink) when the headers lack them.
	if rest, ok := strings.CutPrefix(subject, events.DLQSubjectPrefix); ok {
		stage, suffix, _ := strings.Cut(rest, ".")
		d.Stage = cmp.Or(d.Stage, stage)
		switch d.Stage {
		case events.StageRouter:
			d.Type = cmp.Or(d.Type, suffix)
		case events.StageSink:
			d.Workflow = cmp.Or(d.Workflow, suffix)
		}
	}
	if d.Type == "" {
		d.Type, _ = events.EventTypeFromSubject(d.SourceSubject)
	}
	if d.SourceStream == "" {
		d.SourceStream = sourceStream(d.Stage)
	}
	if d.SourceSubject == "" {
		d.SourceSubject = sourceSubject(d)
	}
	return d
}

// sourceStream is the stream a stage reads.
func sourceStream(stage string) string {
	switch stage {
	case events.StageRouter:
		return events.StreamClerk
	case events.StageSink:
		return events.StreamNovu
	}
	return ""
}

// sourceSubject rebuilds the source subject of a dead letter that does not
// name it.
func sourceSubject(d DeadLetter) string {
	switch {
	case d.Stage == events.StageRouter && d.Type != "":
		return events.ClerkSubjectPrefix + d.Type
	case d.Stage == events.StageSink && d.Workflow != "":
		return events.NovuTriggerSubjectPrefix + d.Workflow
	}
	return ""
}

// Selector picks dead letters; a zero field selects everything.
type Selector struct {
	// Stage is router, sink or "".
	Stage string
	// Types are event types, any of which matches.
	Types []string
	// Workflow is a workflow id.
	Workflow string
	// Reason is a substring of the reason, case-insensitive.
	Reason string
	// Since and Until bound when the dead letter was stored (Until inclusive).
	Since, Until time.Time
	// SeqFrom and SeqTo bound the DLQ sequence (inclusive; 0 unbounded).
	SeqFrom, SeqTo uint64
}

// Validate reports a selector that can match nothing by mistake.
func (s Selector) Validate() error {
	if s.Stage != "" && s.Stage != events.StageRouter && s.Stage != events.StageSink {
		return fmt.Errorf("%w: stage %q: want router or sink", ErrBadSelector, s.Stage)
	}
	if !s.Since.IsZero() && !s.Until.IsZero() && s.Until.Before(s.Since) {
		return fmt.Errorf("%w: --until %s is before --since %s", ErrBadSelector, s.Until.Format(time.RFC3339), s.Since.Format(time.RFC3339))
	}
	return nil
}

// Match reports whether d is selected.
func (s Selector) Match(d DeadLetter) bool {
	switch {
	case s.Stage != "" && d.Stage != s.Stage,
		len(s.Types) > 0 && !slices.Contains(s.Types, d.Type),
		s.Workflow != "" && d.Workflow != s.Workflow,
		s.Reason != "" && !strings.Contains(strings.ToLower(d.Reason), strings.ToLower(s.Reason)),
		!s.Since.IsZero() && d.Time.Before(s.Since),
		!s.Until.IsZero() && d.Time.After(s.Until),
		s.SeqFrom > 0 && d.Seq < s.SeqFrom,
		s.SeqTo > 0 && d.Seq > s.SeqTo:
		return false
	}
	return true
}

// past reports whether d and everything after it in the stream is beyond
// the selector, so a scan can stop.
func (s Selector) past(d DeadLetter) bool {
	return (s.SeqTo > 0 && d.Seq > s.SeqTo) || (!s.Until.IsZero() && d.Time.After(s.Until))
}

// ListDeadLetters returns the dead letters sel selects, in DLQ order.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, sel Selector) ([]DeadLetter, error) {
	if err := sel.Validate(); err != nil {
		return nil, err
	}
	subjects := []string{events.DLQSubjectsAll}
	if sel.Stage != "" {
		subjects = []string{events.DLQSubjectPrefix + sel.Stage + ".>"}
	}
	var out []DeadLetter
	err := scan(ctx, js, events.StreamDLQ, subjects, From{Seq: sel.SeqFrom, Time: sel.Since}, func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		d := ReadDeadLetter(md.Sequence.Stream, m.Subject(), md.Timestamp, m.Headers(), nil)
		if sel.past(d) {
			return false, nil
		}
		if sel.Match(d) {
			out = append(out, d)
		}
		return true, nil
	})
	return out, err
}

// GetDeadLetter reads the dead letter at seq.
func GetDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) (DeadLetter, error) {
	s, err := js.Stream(ctx, events.StreamDLQ)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("stream %s: %w", events.StreamDLQ, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return ReadDeadLetter(m.Sequence, m.Subject, m.Time, m.Header, m.Data), nil
}

// Summary is the plan shown before a change: how many, grouped, and a sample.
type Summary struct {
	Count    int            `json:"count"`
	ByStage  map[string]int `json:"by_stage"`
	ByType   map[string]int `json:"by_type"`
	ByReason map[string]int `json:"by_reason"`
	Sample   []DeadLetter   `json:"sample"`
}

// Summarize groups dls and keeps the first n as a sample.
func Summarize(dls []DeadLetter, n int) Summary {
	s := Summary{Count: len(dls), ByStage: map[string]int{}, ByType: map[string]int{}, ByReason: map[string]int{}}
	for _, d := range dls {
		s.ByStage[d.Stage]++
		s.ByType[cmp.Or(d.Type, "(unknown)")]++
		s.ByReason[d.Reason]++
	}
	s.Sample = dls[:min(n, len(dls))]
	return s
}

// Counts returns m's keys ordered by count, highest first, then by name.
func Counts(m map[string]int) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	return keys
}

// Outcome is what happened to one message of a redrive, purge or replay.
type Outcome struct {
	// Seq is the message's sequence in the stream it was read from.
	Seq uint64 `json:"seq"`
	// Result is redriven, purged, replayed, refused or failed.
	Result string `json:"result"`
	// Subject is where it was republished.
	Subject string `json:"subject,omitempty"`
	// NewSeq is the republished message's sequence.
	NewSeq uint64 `json:"new_seq,omitempty"`
	// Reason says why it was refused or failed.
	Reason string `json:"reason,omitempty"`
}

// Results of an [Outcome].
const (
	ResultRedriven = "redriven"
	ResultPurged   = "purged"
	ResultReplayed = "replayed"
	ResultRefused  = "refused"
	ResultFailed   = "failed"
)

// RunOptions pace a redrive, purge or replay.
type RunOptions struct {
	// Rate is how many messages per second at most; 0 is unpaced.
	Rate float64
	// Progress, when set, is called after each message.
	Progress func(done, total int)
}

func (o RunOptions) each(ctx context.Context, n int, fn func(i int) Outcome) ([]Outcome, error) {
	var lim *rate.Limiter
	if o.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}
	out := make([]Outcome, 0, n)
	for i := range n {
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				return out, err
			}
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		out = append(out, fn(i))
		if o.Progress != nil {
			o.Progress(i+1, n)
		}
	}
	return out, nil
}

// ErrSourceGone reports a truncated dead letter whose source has aged out
// of its stream: the full body cannot be recovered.
var ErrSourceGone = errors.New("source message gone")

// RedriveMsg builds the message that redrives d with body (d.Body, or the
// source's full body when d is truncated): to the subject it was read from,
// with its headers (svix-id, transactionId, trace context...) but neither
// the Dlq-* nor the JetStream control headers, a fresh Nats-Msg-Id derived
// from the dead letter's sequence (so a retried redrive is stored once, and
// the source stream's duplicate window does not drop it), Redrive-Of and
// Redrive-Count.
func RedriveMsg(d DeadLetter, body []byte) (*nats.Msg, error) {
	if d.SourceSubject == "" || d.SourceStream == "" {
		return nil, fmt.Errorf("dead letter %d names no source subject: it cannot be redriven", d.Seq)
	}
	h := events.CopyHeaders(d.Header, events.DLQHeaderPrefix)
	h.Set(jetstream.MsgIDHeader, "redrive."+events.StreamDLQ+"."+strconv.FormatUint(d.Seq, 10))
	h.Set(events.RedriveOfHeader, events.StreamDLQ+"/"+strconv.FormatUint(d.Seq, 10))
	h.Set(events.RedriveCountHeader, strconv.Itoa(d.RedriveCount+1))
	return &nats.Msg{Subject: d.SourceSubject, Header: h, Data: body}, nil
}

// streams resolves stream handles by name, each once (a STREAM.INFO round
// trip), for the length of one [Redrive] or [Replay].
type streams struct {
	js jetstream.JetStream
	m  map[string]jetstream.Stream
}

func (ss *streams) get(ctx context.Context, name string) (jetstream.Stream, error) {
	if s, ok := ss.m[name]; ok {
		return s, nil
	}
	s, err := ss.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	if ss.m == nil {
		ss.m = map[string]jetstream.Stream{}
	}
	ss.m[name] = s
	return s, nil
}

// redriveBody returns the body to redrive d with: its own (read from the
// DLQ when d was listed without it), or the source's when it was truncated.
func redriveBody(ctx context.Context, ss *streams, d DeadLetter) ([]byte, error) {
	if !d.Truncated {
		if d.Body != nil {
			return d.Body, nil
		}
		body, err := storedBody(ctx, ss, events.StreamDLQ, d.Seq, d.Subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, fmt.Errorf("dead letter %d is gone (purged or redriven meanwhile): %w", d.Seq, jetstream.ErrMsgNotFound)
		}
		return body, err
	}
	if d.SourceSequence == 0 {
		return nil, fmt.Errorf("%w: truncated and no source sequence", ErrSourceGone)
	}
	body, err := storedBody(ctx, ss, d.SourceStream, d.SourceSequence, d.SourceSubject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: truncated, and %s #%d has aged out of the stream; dlq show %d keeps what is left", ErrSourceGone, d.SourceStream, d.SourceSequence, d.Seq)
	}
	if errors.Is(err, errSubjectChanged) {
		return nil, fmt.Errorf("%w: %w", ErrSourceGone, err)
	}
	return body, err
}

// readResult is the result of a message whose body could not be read:
// refused when it is gone or is another message (no retry can help),
// failed when NATS did not answer (a retry may).
func readResult(err error) string {
	if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, errSubjectChanged) || errors.Is(err, ErrSourceGone) {
		return ResultRefused
	}
	return ResultFailed
}

// errSubjectChanged: the message at a sequence is not the one listed.
var errSubjectChanged = errors.New("subject changed")

// storedBody reads the body of message seq of stream, which must still be
// on subject: the scans list headers only. It wraps
// jetstream.ErrMsgNotFound when the message is gone, and errSubjectChanged.
func storedBody(ctx context.Context, ss *streams, stream string, seq uint64, subject string) ([]byte, error) {
	s, err := ss.get(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("read %s #%d: %w", stream, seq, err)
	}
	if m.Subject != subject {
		return nil, fmt.Errorf("%w: %s #%d is now %s, not %s", errSubjectChanged, stream, seq, m.Subject, subject)
	}
	return m.Data, nil
}

// Redrive republishes each dead letter where it came from ([RedriveMsg]) and
// deletes it from the DLQ only once the republish is acked. A dead letter
// that cannot be redriven is refused with the reason and kept.
func Redrive(ctx context.Context, js jetstream.JetStream, dls []DeadLetter, o RunOptions) ([]Outcome, error) {
	dlq, err := js.Stream(ctx, events.StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamDLQ, err)
	}
	sources := &streams{js: js, m: map[string]jetstream.Stream{events.StreamDLQ: dlq}}
	return o.each(ctx, len(dls), func(i int) Outcome {
		d := dls[i]
		out := Outcome{Seq: d.Seq, Subject: d.SourceSubject}
		body, err := redriveBody(ctx, sources, d)
		if err != nil {
			out.Result, out.Reason = readResult(err), err.Error()
			return out
		}
		m, err := RedriveMsg(d, body)
		if err != nil {
			out.Result, out.Reason = ResultRefused, err.Error()
			return out
		}
		ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(d.SourceStream))
		if err != nil {
			out.Result, out.Reason = ResultFailed, fmt.Sprintf("republish to %s: %v", m.Subject, err)
			return out
		}
		out.NewSeq = ack.Sequence
		if err := dlq.DeleteMsg(ctx, d.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			out.Result, out.Reason = ResultFailed, fmt.Sprintf("republished as %s #%d, but the dead letter was not deleted: %v", d.SourceStream, ack.Sequence, err)
			return out
		}
		out.Result = ResultRedriven
		return out
	})
}

// Purge deletes each dead letter.
func Purge(ctx context.Context, js jetstream.JetStream, dls []DeadLetter, o RunOptions) ([]Outcome, error) {
	dlq, err := js.Stream(ctx, events.StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamDLQ, err)
	}
	return o.each(ctx, len(dls), func(i int) Outcome {
		out := Outcome{Seq: dls[i].Seq, Result: ResultPurged}
		if err := dlq.DeleteMsg(ctx, dls[i].Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			out.Result, out.Reason = ResultFailed, err.Error()
		}
		return out
	})
}

// Tally counts outcomes by result.
func Tally(outs []Outcome) map[string]int {
	m := map[string]int{}
	for _, o := range outs {
		m[o.Result]++
	}
	return m
}
