package events

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	base, maxDelay := time.Second, 5*time.Minute
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{attempt: 0, min: 500 * time.Millisecond, max: time.Second},
		{attempt: 1, min: 500 * time.Millisecond, max: time.Second},
		{attempt: 2, min: time.Second, max: 2 * time.Second},
		{attempt: 5, min: 8 * time.Second, max: 16 * time.Second},
		{attempt: 9, min: 128 * time.Second, max: 256 * time.Second},
		{attempt: 10, min: 150 * time.Second, max: 5 * time.Minute},
		{attempt: 100, min: 150 * time.Second, max: 5 * time.Minute},
		{attempt: 1 << 30, min: 150 * time.Second, max: 5 * time.Minute},
	}
	for _, tt := range tests {
		for _, jitter := range []float64{-1, 0, 0.25, 0.5, 0.999, 1, 2} {
			got := Backoff(tt.attempt, base, maxDelay, jitter)
			if got < tt.min || got > tt.max {
				t.Errorf("Backoff(%d, jitter %v) = %v, want within [%v, %v]", tt.attempt, jitter, got, tt.min, tt.max)
			}
		}
		if lo, hi := Backoff(tt.attempt, base, maxDelay, 0), Backoff(tt.attempt, base, maxDelay, 0.999); lo != tt.min || hi <= lo {
			t.Errorf("Backoff(%d) spans [%v, %v], want it to start at %v and spread", tt.attempt, lo, hi, tt.min)
		}
	}
	if got := Backoff(3, 0, time.Minute, 0.5); got != 0 {
		t.Errorf("Backoff with zero base = %v, want 0", got)
	}
	if got := Backoff(3, time.Second, time.Millisecond, 0); got != 500*time.Millisecond {
		t.Errorf("Backoff with max below base = %v, want base/2", got)
	}
}
