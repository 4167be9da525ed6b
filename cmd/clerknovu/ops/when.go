package ops

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrBadSelector reports a selector flag that cannot be parsed.
var ErrBadSelector = errors.New("bad selector")

// ParseTime reads a point in time as RFC 3339 (2026-12-01T10:00:00Z) or as a
// duration back from now: 90s, 30m, 2h, 7d (days of 24 h) or a Go duration
// such as 1h30m.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("%w: empty time", ErrBadSelector)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("%w: %q: want RFC 3339 or a duration such as 2h or 7d", ErrBadSelector, s)
		}
		return now.Add(-time.Duration(n * 24 * float64(time.Hour))), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%w: %q: want RFC 3339 or a duration such as 2h or 7d", ErrBadSelector, s)
	}
	return now.Add(-d), nil
}

// ParseSeqRange reads A-B, A- (from A), -B (up to B) or A (just A); 0 means
// unbounded.
func ParseSeqRange(s string) (from, to uint64, err error) {
	bad := func() (uint64, uint64, error) {
		return 0, 0, fmt.Errorf("%w: sequence range %q: want A-B, A-, -B or A", ErrBadSelector, s)
	}
	a, b, dash := strings.Cut(strings.TrimSpace(s), "-")
	parse := func(v string) (uint64, bool) {
		if v == "" {
			return 0, true
		}
		n, err := strconv.ParseUint(v, 10, 64)
		return n, err == nil && n > 0
	}
	from, okA := parse(a)
	if !dash {
		if !okA || from == 0 {
			return bad()
		}
		return from, from, nil
	}
	to, okB := parse(b)
	if !okA || !okB || (from == 0 && to == 0) || (to > 0 && from > to) {
		return bad()
	}
	return from, to, nil
}
