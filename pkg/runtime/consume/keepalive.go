package consume

import (
	"sync"
	"time"
)

// inHand is the set of messages pulled and not yet settled, each kept alive
// with InProgress every AckWait/3 by one ticker, so the server does not
// redeliver a message the runtime still holds, whether it waits for a
// worker, is being handled or settled, or is held by a Pause.
type inHand struct {
	every time.Duration
	mu    sync.Mutex
	msgs  map[*Message]time.Time // last InProgress, or the pull
}

func newInHand(ackWait time.Duration) *inHand {
	return &inHand{every: max(ackWait/3, time.Millisecond), msgs: map[*Message]time.Time{}}
}

func (h *inHand) add(m *Message, now time.Time) {
	h.mu.Lock()
	h.msgs[m] = now
	h.mu.Unlock()
}

func (h *inHand) remove(m *Message) {
	h.mu.Lock()
	delete(h.msgs, m)
	h.mu.Unlock()
}

// due returns the messages whose last keep-alive is a third of the ack wait
// old, and marks them touched at now.
func (h *inHand) due(now time.Time) []*Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*Message
	for m, last := range h.msgs {
		if now.Sub(last) >= h.every {
			out = append(out, m)
			h.msgs[m] = now
		}
	}
	return out
}

// run sends the keep-alives until stop is closed.
func (h *inHand) run(stop <-chan struct{}) {
	t := time.NewTicker(max(h.every/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			for _, m := range h.due(now) {
				_ = m.msg.InProgress() // a lost one is covered by the next, a third of the ack wait later
			}
		case <-stop:
			return
		}
	}
}
