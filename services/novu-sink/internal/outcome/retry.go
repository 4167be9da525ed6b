package outcome

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// httpDateLayouts are the HTTP-date forms of RFC 9110 §5.6.7, preferred first.
var httpDateLayouts = []string{
	"Mon, 02 Jan 2006 15:04:05 GMT", // IMF-fixdate
	"Monday, 02-Jan-06 15:04:05 GMT",
	"Mon Jan _2 15:04:05 2006",
}

// ParseRetryAfter reads a Retry-After value: delay-seconds ("120", also
// "1.5", which Novu never sends but costs nothing to accept) or an HTTP date,
// relative to now. A date in the past gives 0. It reports false when v is
// empty or unreadable.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if d, ok := parseSeconds(v); ok {
		return d, true
	}
	for _, layout := range httpDateLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			d := t.Sub(now)
			if d < 0 {
				d = 0
			}
			return d, true
		}
	}
	return 0, false
}

// parseSeconds reads a non-negative number of seconds.
func parseSeconds(v string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	const maxSeconds = float64(math.MaxInt64 / int64(time.Second))
	if f > maxSeconds {
		f = maxSeconds
	}
	return time.Duration(f * float64(time.Second)), true
}

// RateLimitPause says how long every call should wait after an answer with
// these headers: Retry-After on a 429, or RateLimit-Reset when
// RateLimit-Remaining is 0 (Novu's bucket is empty). It reports false when no
// pause is asked for.
func RateLimitPause(code int, h Header, now time.Time) (time.Duration, bool) {
	if code == 429 {
		if d, ok := ParseRetryAfter(h.RetryAfter, now); ok {
			return d, true
		}
		// A 429 without Retry-After: Novu always sends it, but be safe.
		if d, ok := parseSeconds(strings.TrimSpace(h.RateLimitReset)); ok {
			return d, true
		}
		return time.Second, true
	}
	rem := strings.TrimSpace(h.RateLimitRemaining)
	if rem == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(rem, 64); err != nil || n > 0 {
		return 0, false
	}
	d, ok := parseSeconds(strings.TrimSpace(h.RateLimitReset))
	if !ok || d == 0 {
		return 0, false
	}
	return d, true
}
