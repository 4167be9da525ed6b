package eventstest

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
)

// Terminations subscribes to every consumer's MSG_TERMINATED advisories (a
// message settled with Term or TermWithReason, as a dead letter is, rather
// than acked as delivered) and returns a function listing the stream
// sequences terminated so far. The subscription ends with the test.
func Terminations(t testing.TB, nc *nats.Conn) func() []uint64 {
	t.Helper()
	var mu sync.Mutex
	var seqs []uint64
	sub, err := nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>", func(m *nats.Msg) {
		var adv struct {
			StreamSeq uint64 `json:"stream_seq"`
		}
		if json.Unmarshal(m.Data, &adv) != nil {
			return
		}
		mu.Lock()
		seqs = append(seqs, adv.StreamSeq)
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("eventstest: subscribe to terminations: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatalf("eventstest: flush: %v", err)
	}
	return func() []uint64 {
		mu.Lock()
		defer mu.Unlock()
		return append([]uint64(nil), seqs...)
	}
}
