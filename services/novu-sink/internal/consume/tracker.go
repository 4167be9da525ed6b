package consume

import (
	"sync"
	"time"

	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
	"github.com/nats-io/nats.go/jetstream"
)

// maxTracked bounds the memory of [tracker]; past it the oldest knowledge is
// forgotten, which costs at most one more replayed error per spent key.
const maxTracked = 10000

// tracker remembers, per transactionId (or bulk key), what outlives one
// delivery in this process: the Idempotency-Key attempt after Novu replayed a
// cached error, and when the first failure happened.
type tracker struct {
	mu sync.Mutex
	m  map[string]*track
}

type track struct {
	attempt      int
	firstFailure time.Time
	// excused counts deliveries that were not the message's fault: Novu
	// refused the key or plan (an outage), or the breaker kept the call from
	// being made. They do not count towards NOVU_MAX_DELIVER.
	excused uint64
}

func newTracker() *tracker { return &tracker{m: map[string]*track{}} }

func (t *tracker) get(base string) *track {
	tr := t.m[base]
	if tr == nil {
		if len(t.m) >= maxTracked {
			clear(t.m)
		}
		tr = &track{}
		t.m[base] = tr
	}
	return tr
}

// key returns the Idempotency-Key to use now for base.
func (t *tracker) key(base string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr := t.m[base]; tr != nil {
		return novu.IdempotencyKey(base, tr.attempt)
	}
	return novu.IdempotencyKey(base, 0)
}

// spend marks used (the key derived for base) as spent, so the next call derives a fresh one.
func (t *tracker) spend(base, used string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.get(base)
	if novu.IdempotencyKey(base, tr.attempt) == used {
		tr.attempt++
	}
}

// failed records a failure at now and returns the first one known.
func (t *tracker) failed(base string, now time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.get(base)
	if tr.firstFailure.IsZero() {
		tr.firstFailure = now
	}
	return tr.firstFailure
}

// excuse records a delivery of base that does not count towards the maximum.
func (t *tracker) excuse(base string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.get(base).excused++
}

// excused returns how many deliveries of base were excused.
func (t *tracker) excused(base string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr := t.m[base]; tr != nil {
		return tr.excused
	}
	return 0
}

// forget drops what is known about base, once its message is settled.
func (t *tracker) forget(base string) {
	t.mu.Lock()
	delete(t.m, base)
	t.mu.Unlock()
}

// inHand tracks the messages fetched and not yet acked or NAKed, and tells
// the server every ackWait/3 that those still being worked on (waiting for a
// slot, the rate limit or Novu) are in progress, so no other instance gets
// them meanwhile.
type inHand struct {
	every time.Duration
	mu    sync.Mutex
	m     map[jetstream.Msg]time.Time
}

func newInHand(ackWait time.Duration) *inHand {
	return &inHand{every: max(ackWait/3, 10*time.Millisecond), m: map[jetstream.Msg]time.Time{}}
}

func (h *inHand) add(msg jetstream.Msg) {
	h.mu.Lock()
	h.m[msg] = time.Now()
	h.mu.Unlock()
}

func (h *inHand) remove(msg jetstream.Msg) {
	h.mu.Lock()
	delete(h.m, msg)
	h.mu.Unlock()
}

// touch sends InProgress for the messages held for a third of the ack wait.
func (h *inHand) touch(now time.Time) {
	var due []jetstream.Msg
	h.mu.Lock()
	for msg, last := range h.m {
		if now.Sub(last) >= h.every {
			due = append(due, msg)
			h.m[msg] = now
		}
	}
	h.mu.Unlock()
	for _, msg := range due {
		_ = msg.InProgress() // fails only when the message was settled meanwhile
	}
}
