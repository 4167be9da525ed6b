package events

import (
	"math"
	"time"
)

// Backoff, shared by the router and the sink, is the delay before retry number attempt (1 for the first retry):
// base·2^(attempt-1), capped at maxDelay, with "equal jitter": the result lies in
// [d/2, d], so retries spread out yet never come back sooner than half the
// nominal delay. jitter is a random number in [0, 1).
func Backoff(attempt int, base, maxDelay time.Duration, jitter float64) time.Duration {
	if base <= 0 {
		return 0
	}
	if maxDelay < base {
		maxDelay = base
	}
	if attempt < 1 {
		attempt = 1
	}
	d := maxDelay
	if attempt-1 < 62 {
		if f := float64(base) * math.Exp2(float64(attempt-1)); f < float64(maxDelay) {
			d = time.Duration(f)
		}
	}
	if jitter < 0 {
		jitter = 0
	}
	if jitter >= 1 {
		jitter = 0.999999
	}
	half := d / 2
	return half + time.Duration(jitter*float64(d-half))
}
