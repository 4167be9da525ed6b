package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// From is where a scan starts: a stream sequence, else a time, else the
// beginning of the stream.
type From struct {
	Seq  uint64
	Time time.Time
}

// scanBatch is how many messages one fetch asks for.
const scanBatch = 256

// scan calls fn with every message of stream whose subject matches one of
// subjects (every subject when empty), and its metadata, in stream order
// from from, until fn returns false or an error. It reads through an
// ephemeral consumer that acks nothing and changes nothing, and that
// delivers headers only: what the commands select on and print, without
// holding every body of a large stream in memory ([storedBody] reads one
// when it is needed).
func scan(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, from From, fn func(jetstream.Msg, *jetstream.MsgMetadata) (bool, error)) error {
	cfg := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		FilterSubjects:    subjects,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
		HeadersOnly:       true,
		Description:       "clerknovu scan",
	}
	switch {
	case from.Seq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from.Seq
	case !from.Time.IsZero():
		t := from.Time
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	cons, err := js.CreateConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	name := cons.CachedInfo().Name
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, stream, name)
	}()
	pending := cons.CachedInfo().NumPending
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, scanBatch)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("read stream %s: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("read stream %s: %w", stream, err)
			}
			pending = md.NumPending
			more, err := fn(m, md)
			if err != nil || !more {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("read stream %s: %w", stream, err)
		}
		if n == 0 {
			return fmt.Errorf("read stream %s: %d messages announced, none delivered within 5s", stream, pending)
		}
	}
	return ctx.Err()
}
