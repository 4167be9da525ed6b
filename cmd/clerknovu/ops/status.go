package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamStatus is one stream's state.
type StreamStatus struct {
	Kind     string    `json:"kind"`
	Name     string    `json:"name"`
	Missing  bool      `json:"missing,omitempty"`
	Messages uint64    `json:"messages"`
	Bytes    uint64    `json:"bytes"`
	FirstSeq uint64    `json:"first_seq"`
	First    time.Time `json:"first,omitzero"`
	LastSeq  uint64    `json:"last_seq"`
	Last     time.Time `json:"last,omitzero"`
}

// ConsumerStatus is one durable consumer's state.
type ConsumerStatus struct {
	Kind         string     `json:"kind"`
	Name         string     `json:"name"`
	Missing      bool       `json:"missing,omitempty"`
	Pending      uint64     `json:"pending"`
	AckPending   int        `json:"ack_pending"`
	Redelivered  int        `json:"redelivered"`
	LastActivity *time.Time `json:"last_activity,omitempty"`
}

// DLQStatus is the DLQ's depth by stage and reason.
type DLQStatus struct {
	Kind     string         `json:"kind"`
	Depth    int            `json:"depth"`
	ByStage  map[string]int `json:"by_stage"`
	ByReason map[string]int `json:"by_reason"`
}

// Streams returns the state of each declared stream.
func Streams(ctx context.Context, js jetstream.JetStream, declared []jetstream.StreamConfig) ([]StreamStatus, error) {
	out := make([]StreamStatus, 0, len(declared))
	for _, cfg := range declared {
		st := StreamStatus{Kind: "stream", Name: cfg.Name}
		s, err := js.Stream(ctx, cfg.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			st.Missing = true
		case err != nil:
			return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
		default:
			state := s.CachedInfo().State
			st.Messages, st.Bytes, st.FirstSeq, st.First, st.LastSeq, st.Last = state.Msgs, state.Bytes, state.FirstSeq, state.FirstTime, state.LastSeq, state.LastTime
		}
		out = append(out, st)
	}
	return out, nil
}

// Consumers returns the state of each declared consumer.
func Consumers(ctx context.Context, js jetstream.JetStream, declared []events.Consumer) ([]ConsumerStatus, error) {
	out := make([]ConsumerStatus, 0, len(declared))
	for _, c := range declared {
		cs := ConsumerStatus{Kind: "consumer", Name: c.String()}
		cons, err := js.Consumer(ctx, c.Stream, c.Config.Durable)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
			cs.Missing = true
		case err != nil:
			return nil, fmt.Errorf("consumer %s: %w", c, err)
		default:
			info := cons.CachedInfo()
			cs.Pending, cs.AckPending, cs.Redelivered = info.NumPending, info.NumAckPending, info.NumRedelivered
			if info.Delivered.Last != nil {
				cs.LastActivity = info.Delivered.Last
			}
			if info.AckFloor.Last != nil && (cs.LastActivity == nil || info.AckFloor.Last.After(*cs.LastActivity)) {
				cs.LastActivity = info.AckFloor.Last
			}
		}
		out = append(out, cs)
	}
	return out, nil
}

// DLQDepth counts the dead letters by stage and reason.
func DLQDepth(ctx context.Context, js jetstream.JetStream) (DLQStatus, error) {
	dls, err := ListDeadLetters(ctx, js, Selector{})
	if err != nil {
		return DLQStatus{}, err
	}
	s := Summarize(dls, 0)
	return DLQStatus{Kind: "dlq", Depth: s.Count, ByStage: s.ByStage, ByReason: s.ByReason}, nil
}
