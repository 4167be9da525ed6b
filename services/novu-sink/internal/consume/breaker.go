package consume

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clerknovu/pipeline/services/novu-sink/internal/outcome"
	"github.com/sony/gobreaker/v2"
)

var (
	// errCallFailed reports a call that counts as a breaker failure.
	errCallFailed = errors.New("novu call failed")
	// errCallIgnored reports a call the breaker neither counts nor resets on.
	errCallIgnored = errors.New("novu call ignored by the breaker")
	// errSkipProbe reports the message that opened the breaker, held back
	// so that another message is the half-open probe.
	errSkipProbe = errors.New("novu breaker half-open: this message opened it, another is the probe")
)

// breaker wraps a gobreaker two-step breaker around Novu calls. It opens after
// failures consecutive failures, or at once on an outage (401/402/403), stays
// open for the open period, then lets one probe through (half-open).
//
// A 5xx counts once per message in a run of failures, so one message that
// Novu keeps failing (while others succeed or nothing else is sent) cannot
// open the breaker on its own: its own backoff isolates it. And the message
// whose failure opened the breaker (or failed the last probe) is not the
// next probe: a good message behind it waits at most one open period.
type breaker struct {
	cb     *gobreaker.TwoStepCircuitBreaker[struct{}]
	open   time.Duration
	log    *slog.Logger
	m      *gateMetrics
	tripIt atomic.Bool

	mu        sync.Mutex
	openUntil time.Time
	outage    string          // the hint of the current outage, logged once
	failing   map[string]bool // messages counted in the current run of failures
	avoid     string          // the message whose 5xx opened the breaker: not the next probe
}

func newBreaker(failures int, open time.Duration, log *slog.Logger, m *gateMetrics) *breaker {
	b := &breaker{open: open, log: log, m: m, failing: map[string]bool{}}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "novu",
		MaxRequests: 1,
		Timeout:     open,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return b.tripIt.Load() || c.ConsecutiveFailures >= uint32(failures)
		},
		IsExcluded:    func(err error) bool { return errors.Is(err, errCallIgnored) },
		OnStateChange: b.onStateChange,
	})
	return b
}

// allow asks to make a call for the message (or bulk call) key; done reports
// how it went. err is gobreaker.ErrOpenState or ErrTooManyRequests when the
// call must not be made.
//
// A message that may be held back (skippable: it has deliveries to spare)
// gets errSkipProbe when its own 5xx opened the breaker and it would be the
// half-open probe.
func (b *breaker) allow(key string, skippable bool) (done func(outcome.BreakerVerdict), err error) {
	if skippable && b.cb.State() == gobreaker.StateHalfOpen && b.skipProbe(key) {
		return nil, errSkipProbe
	}
	report, err := b.cb.Allow()
	if err != nil {
		return nil, err
	}
	return func(v outcome.BreakerVerdict) {
		switch v {
		case outcome.BreakerSuccess:
			b.mu.Lock()
			clear(b.failing)
			b.mu.Unlock()
			report(nil)
		case outcome.BreakerMessageFailure:
			b.mu.Lock()
			again := b.failing[key]
			b.failing[key] = true
			b.mu.Unlock()
			if again && b.cb.State() == gobreaker.StateClosed {
				report(errCallIgnored)
				return
			}
			report(errCallFailed)
			if b.cb.State() == gobreaker.StateOpen {
				// This message's failure opened the breaker: it is not the next probe.
				b.mu.Lock()
				b.avoid = key
				clear(b.failing)
				b.mu.Unlock()
			}
		case outcome.BreakerFailure:
			report(errCallFailed)
		case outcome.BreakerTrip:
			b.tripIt.Store(true)
			report(errCallFailed)
			b.tripIt.Store(false)
		default:
			report(errCallIgnored)
		}
	}, nil
}

// skipProbe reports whether key's message must not be the half-open probe:
// its own 5xx opened the breaker (or failed the last probe). It says so once, so a
// message that is all there is becomes the probe after the next one.
func (b *breaker) skipProbe(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if key == "" || key != b.avoid {
		return false
	}
	b.avoid = ""
	return true
}

// state returns the current state, moving from open to half-open when the
// open period is over.
func (b *breaker) state() gobreaker.State { return b.cb.State() }

// openRemaining is how long the breaker stays open from now.
func (b *breaker) openRemaining() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return time.Until(b.openUntil)
}

// reportOutage logs an outage once: again only when its cause changes or
// after Novu answered normally in between.
func (b *breaker) reportOutage(r outcome.Result) {
	b.mu.Lock()
	first := b.outage != r.Hint
	b.outage = r.Hint
	b.mu.Unlock()
	if first {
		b.log.Error(r.Hint+"; every message is kept and retried while the breaker is open, nothing is dead-lettered",
			"reason", r.Reason, "breaker_open", b.open.String())
	}
}

// detail describes the breaker for /readyz.
func (b *breaker) detail() string {
	st := b.state().String()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.outage != "" && st != gobreaker.StateClosed.String() {
		return st + ": " + b.outage
	}
	return st
}

// onStateChange runs under the breaker's lock: it must not call the breaker.
func (b *breaker) onStateChange(_ string, from, to gobreaker.State) {
	b.m.breakerState.Set(float64(to))
	b.m.breakerTransitions.WithLabelValues(from.String(), to.String()).Inc()
	b.mu.Lock()
	if to == gobreaker.StateOpen {
		b.openUntil = time.Now().Add(b.open)
	}
	outage := b.outage
	if to == gobreaker.StateClosed {
		b.outage = ""
	}
	b.mu.Unlock()
	switch {
	case to == gobreaker.StateOpen && from == gobreaker.StateClosed:
		b.log.Warn("novu breaker opened: not fetching until it half-opens", "from", from.String(), "to", to.String(), "open_for", b.open.String())
	case to == gobreaker.StateClosed && outage != "":
		b.log.Info("novu breaker closed: the outage is over, resuming", "from", from.String(), "to", to.String())
	case to == gobreaker.StateClosed:
		b.log.Info("novu breaker closed: resuming", "from", from.String(), "to", to.String())
	default:
		b.log.Info("novu breaker state changed", "from", from.String(), "to", to.String())
	}
}
