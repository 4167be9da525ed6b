package consume

import (
	"sync"
	"time"

	"github.com/clerknovu/pipeline/services/novu-sink/internal/novu"
)

// maxTracked bounds the memory of [tracker]; past it the oldest knowledge is
// forgotten, which costs at most one more replayed error per spent key.
const maxTracked = 10000

// tracker remembers, per transactionId (or bulk key), what outlives one
// delivery in this process: the Idempotency-Key attempt after Novu replayed a
// cached error, and when the first failure happened (for the dead letter).
type tracker struct {
	mu sync.Mutex
	m  map[string]*track
}

type track struct {
	attempt      int
	firstFailure time.Time
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

// forget drops what is known about base, once its message is settled.
func (t *tracker) forget(base string) {
	t.mu.Lock()
	delete(t.m, base)
	t.mu.Unlock()
}
