package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stages splits the end-to-end latency of delivered triggers at the two
// streams, using the time JetStream stored each message.
type Stages struct {
	// Receiver is webhook sent → stored in CLERK (HTTP, verify, publish).
	Receiver Latency `json:"receiver"`
	// Router is stored in CLERK → command stored in NOVU.
	Router Latency `json:"router"`
	// Sink is stored in NOVU → Novu request received.
	Sink Latency `json:"sink"`
}

// streamMark is where a stream ended before a phase.
type streamMark map[string]uint64

// markStreams records the last sequence of each stream.
func (p *pipeline) markStreams(ctx context.Context, streams ...string) (streamMark, error) {
	m := streamMark{}
	for _, name := range streams {
		s, err := p.js.Stream(ctx, name)
		if err != nil {
			return nil, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, err
		}
		m[name] = info.State.LastSeq
	}
	return m, nil
}

// storedSince returns, by Nats-Msg-Id, when each message stored in stream
// after the mark was stored.
func (p *pipeline) storedSince(ctx context.Context, stream string, mark streamMark) (map[string]time.Time, error) {
	s, err := p.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	first := mark[stream] + 1
	last := info.State.LastSeq
	if last < first {
		return out, nil
	}
	c, err := p.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   first,
	})
	if err != nil {
		return nil, err
	}
	for {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
				out[id] = md.Timestamp
			}
			if md.Sequence.Stream >= last {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("read %s: stopped before sequence %d", stream, last)
		}
	}
}
