package consume

import (
	"context"
	"time"

	"github.com/sony/gobreaker/v2"
)

// bulkPoll is how often the gate looks again for a free bulk slot.
const bulkPoll = 5 * time.Millisecond

// gate is the runtime's pull gate ([rt.Gate]): it holds pulling while the
// breaker is open (the backlog waits in the stream, not in hand), pulls one
// message for the probe when it is half-open, waits out a pause Novu asked
// for, and, in bulk mode, waits until the bucket can pay for a bulk call and
// a bulk slot is free, so a burst does not pile up in memory.
func (s *Sink) gate(ctx context.Context, n int) (int, error) {
	for {
		switch s.breaker.state() {
		case gobreaker.StateOpen:
			sleep(ctx, max(s.breaker.openRemaining(), time.Millisecond))
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			continue
		case gobreaker.StateHalfOpen:
			n = 1
		}
		if err := s.limiter.waitPause(ctx); err != nil {
			return 0, err
		}
		if !s.cfg.Bulk || n < s.cfg.BulkMin {
			return n, nil
		}
		// Under a rate limit, pull a batch only once the bucket can pay for
		// its bulk call: a batch waiting for tokens only fills memory.
		s.limiter.awaitTokens(ctx, bulkCost)
		for int(s.bulkBusy.Load()) >= s.bulkSlots() {
			if !sleep(ctx, bulkPoll) {
				return 0, ctx.Err()
			}
		}
		if s.breaker.state() == gobreaker.StateClosed {
			return n, ctx.Err()
		}
	}
}

// bulkSlots bounds the bulk calls in flight, each holding up to 100
// messages and their encoded request: a quarter of the concurrency keeps a
// burst's memory bounded (a few hundred messages in hand) while calls of 100
// still go out far faster than any Novu tier accepts them.
func (s *Sink) bulkSlots() int { return max(1, s.cfg.Concurrency/4) }
