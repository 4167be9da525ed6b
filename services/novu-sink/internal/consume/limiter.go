package consume

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Token costs of Novu's trigger bucket.
const (
	singleCost = 1
	bulkCost   = 100
)

// limiter is the client-side rate limit: a token bucket charging what Novu
// charges (1 per trigger, 100 per bulk call), plus pauses of every call that
// Novu asks for (429 Retry-After, RateLimit-Remaining 0 until RateLimit-Reset).
type limiter struct {
	lim      *rate.Limiter // nil: unlimited
	maxPause time.Duration
	m        *gateMetrics

	mu    sync.Mutex
	until time.Time
}

// newLimiter allows perSecond tokens a second (0: unlimited) with a burst
// that holds at least one bulk call.
func newLimiter(perSecond float64, maxPause time.Duration, m *gateMetrics) *limiter {
	l := &limiter{maxPause: maxPause, m: m}
	if perSecond > 0 {
		burst := max(bulkCost, int(math.Ceil(perSecond)))
		l.lim = rate.NewLimiter(rate.Limit(perSecond), burst)
	}
	return l
}

// wait blocks until a call of cost tokens may go, or ctx is done. A pause is
// a floor: it holds the calls that wait for a token when it begins too, so
// no call goes out before Novu's Retry-After has passed.
func (l *limiter) wait(ctx context.Context, cost int) error {
	if err := l.waitPause(ctx); err != nil {
		return err
	}
	if l.lim != nil {
		start := time.Now()
		err := l.lim.WaitN(ctx, cost)
		if d := time.Since(start); d > 100*time.Microsecond {
			l.m.rateLimitWait.Add(d.Seconds())
		}
		if err != nil {
			return err
		}
	}
	return l.waitPause(ctx)
}

// waitPause blocks until no pause holds the calls, or ctx is done.
func (l *limiter) waitPause(ctx context.Context) error {
	for {
		if d := l.paused(); d <= 0 {
			return ctx.Err()
		} else if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// paused is how long the current pause lasts from now (<= 0: none).
func (l *limiter) paused() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Until(l.until)
}

// awaitTokens waits until n tokens are available, without taking them, or
// until ctx is done. It returns at once when there is no rate limit.
func (l *limiter) awaitTokens(ctx context.Context, n int) {
	if l.lim == nil {
		return
	}
	for ctx.Err() == nil {
		missing := float64(n) - l.lim.Tokens()
		if missing <= 0 {
			return
		}
		sleep(ctx, time.Duration(missing/float64(l.lim.Limit())*float64(time.Second)))
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pause holds every call for d (at most maxPause) from now.
func (l *limiter) pause(d time.Duration) {
	d = min(d, l.maxPause)
	now := time.Now()
	until := now.Add(d)
	l.mu.Lock()
	if until.After(l.until) {
		// Count the wall time the pause adds, once, however many calls it holds.
		l.m.rateLimitWait.Add(until.Sub(maxTime(l.until, now)).Seconds())
		l.until = until
	}
	l.mu.Unlock()
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
