package consume

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Message is one delivery in hand, as a handler sees it. The handler reads
// it and returns a [Verdict]; only the runtime settles it.
type Message struct {
	// Subject, Header and Data are the message as stored.
	Subject string
	Header  nats.Header
	Data    []byte
	// Stream and Sequence locate the message in its stream (0 when unknown).
	Stream   string
	Sequence uint64
	// NumDelivered counts the server's deliveries of this message, this one
	// included (1 when unknown). A [Pause] does not grow it.
	NumDelivered uint64
	// Timestamp is when the stream stored the message.
	Timestamp time.Time
	// Calls counts the handler calls for this delivery, this one included:
	// more than 1 after a [Pause].
	Calls int

	msg jetstream.Msg
	ctx context.Context
}

// newMessage reads msg's metadata.
func newMessage(msg jetstream.Msg) *Message {
	m := &Message{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data(), NumDelivered: 1, msg: msg}
	if md, err := msg.Metadata(); err == nil {
		m.Stream = md.Stream
		m.Sequence = md.Sequence.Stream
		m.NumDelivered = md.NumDelivered
		m.Timestamp = md.Timestamp
	}
	return m
}

// Context returns the message's context: the runtime's, with the message's
// process span when tracing is on. A batch handler uses it for per-message
// spans and logs.
func (m *Message) Context() context.Context {
	if m.ctx == nil {
		return context.Background()
	}
	return m.ctx
}
