package ops

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StoredEvent is one Clerk event of stream CLERK.
type StoredEvent struct {
	Seq     uint64    `json:"seq"`
	Subject string    `json:"subject"`
	Type    string    `json:"type"`
	SvixID  string    `json:"svix_id"`
	Time    time.Time `json:"time"`

	// Header and Body are the stored message; Body is nil when listed by
	// [ListEvents], which reads headers only ([Replay] reads it).
	Header nats.Header `json:"-"`
	Body   []byte      `json:"-"`
}

// EventSelector picks stored Clerk events; Since is required.
type EventSelector struct {
	// Since and Until bound when the event was stored (Until inclusive, zero: now).
	Since, Until time.Time
	// Types are event types, any of which matches; none: every type.
	Types []string
	// SvixIDs are svix-ids, any of which matches; none: every event.
	SvixIDs []string
}

// Validate reports a selector without a start or with an empty window.
func (s EventSelector) Validate() error {
	if s.Since.IsZero() {
		return fmt.Errorf("%w: --since is required", ErrBadSelector)
	}
	if !s.Until.IsZero() && s.Until.Before(s.Since) {
		return fmt.Errorf("%w: --until %s is before --since %s", ErrBadSelector, s.Until.Format(time.RFC3339), s.Since.Format(time.RFC3339))
	}
	for _, t := range s.Types {
		if err := events.ValidateSubjectTokens(t); err != nil {
			return fmt.Errorf("%w: --type: %w", ErrBadSelector, err)
		}
	}
	return nil
}

// ListEvents returns the stored Clerk events sel selects, in stream order.
func ListEvents(ctx context.Context, js jetstream.JetStream, sel EventSelector) ([]StoredEvent, error) {
	if err := sel.Validate(); err != nil {
		return nil, err
	}
	var subjects []string
	for _, t := range sel.Types {
		subjects = append(subjects, events.ClerkSubjectPrefix+t)
	}
	var out []StoredEvent
	err := scan(ctx, js, events.StreamClerk, subjects, From{Time: sel.Since}, func(m jetstream.Msg, md *jetstream.MsgMetadata) (bool, error) {
		if !sel.Until.IsZero() && md.Timestamp.After(sel.Until) {
			return false, nil
		}
		h := m.Headers()
		e := StoredEvent{Seq: md.Sequence.Stream, Subject: m.Subject(), SvixID: h.Get(events.SvixIDHeader), Time: md.Timestamp, Header: h}
		e.Type, _ = events.EventTypeFromSubject(e.Subject)
		if len(sel.SvixIDs) == 0 || slices.Contains(sel.SvixIDs, e.SvixID) {
			out = append(out, e)
		}
		return true, nil
	})
	return out, err
}

// EventSummary is the plan of a replay.
type EventSummary struct {
	Count  int            `json:"count"`
	ByType map[string]int `json:"by_type"`
	Fresh  bool           `json:"fresh"`
	Sample []StoredEvent  `json:"sample"`
}

// SummarizeEvents groups evs by type and keeps the first n as a sample.
func SummarizeEvents(evs []StoredEvent, fresh bool, n int) EventSummary {
	s := EventSummary{Count: len(evs), ByType: map[string]int{}, Fresh: fresh, Sample: evs[:min(n, len(evs))]}
	for _, e := range evs {
		s.ByType[cmp.Or(e.Type, "(unknown)")]++
	}
	return s
}

// FreshSvixID is the svix-id a --fresh replay gives the copy of an event
// with svixID: the router derives new transactionIds from it, so Novu
// notifies again.
func FreshSvixID(svixID, run string) string { return svixID + ".replay-" + run }

// ReplayMsg builds the copy of e that run (an id of this replay, e.g. its
// start time) republishes: same subject, headers and body, a fresh
// Nats-Msg-Id (so CLERK's duplicate window does not drop it) and Replay-Of.
// The svix-id is kept, so the router derives the same transactionIds and
// only workflows that never ran for this event fire; with fresh it is
// replaced by [FreshSvixID], so every workflow fires again.
func ReplayMsg(e StoredEvent, run string, fresh bool) *nats.Msg {
	h := events.CopyHeaders(e.Header)
	seq := strconv.FormatUint(e.Seq, 10)
	h.Set(jetstream.MsgIDHeader, "replay."+run+"."+events.StreamClerk+"."+seq)
	h.Set(events.ReplayOfHeader, events.StreamClerk+"/"+seq)
	if fresh {
		svix := cmp.Or(e.SvixID, "seq-"+events.StreamClerk+"-"+seq)
		h.Set(events.SvixIDHeader, FreshSvixID(svix, run))
	}
	return &nats.Msg{Subject: e.Subject, Header: h, Data: e.Body}
}

// Replay republishes each event ([ReplayMsg]) into CLERK for the router,
// reading its body when it was listed without one. An event that aged out
// of the stream since it was listed is refused; one NATS did not give back
// failed.
func Replay(ctx context.Context, js jetstream.JetStream, evs []StoredEvent, run string, fresh bool, o RunOptions) ([]Outcome, error) {
	clerk := &streams{js: js}
	return o.each(ctx, len(evs), func(i int) Outcome {
		e := evs[i]
		out := Outcome{Seq: e.Seq, Subject: e.Subject}
		if e.Body == nil {
			body, err := storedBody(ctx, clerk, events.StreamClerk, e.Seq, e.Subject)
			if err != nil {
				out.Result, out.Reason = readResult(err), err.Error()
				return out
			}
			e.Body = body
		}
		ack, err := js.PublishMsg(ctx, ReplayMsg(e, run, fresh), jetstream.WithExpectStream(events.StreamClerk))
		if err != nil {
			out.Result, out.Reason = ResultFailed, err.Error()
			return out
		}
		out.Result, out.NewSeq = ResultReplayed, ack.Sequence
		return out
	})
}
