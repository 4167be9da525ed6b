package verify

import (
	"strings"
	"testing"
)

// TestMatchV1 covers the splitting of the signature header and checks that
// matching allocates nothing: it runs on every webhook, before the body is
// known to be genuine.
func TestMatchV1(t *testing.T) {
	want := []byte(strings.Repeat("s", 44))
	other := strings.Repeat("o", 44)
	tests := []struct {
		passed string
		match  bool
	}{
		{"v1," + string(want), true},
		{"v1," + other + " v1," + string(want), true},
		{"v1a,c29tZQ== v1," + string(want), true},
		{"v1," + string(want) + ",trailing", true}, // the Svix library ignores what follows a second comma
		{"v2," + string(want), false},
		{"v1," + other, false},
		{"v1," + string(want[:43]), false},
		{"v1" + string(want), false},
		{"  v1," + string(want) + "  ", true},
		{"", false},
	}
	for _, tt := range tests {
		if got := matchV1(tt.passed, want); got != tt.match {
			t.Errorf("matchV1(%q) = %v, want %v", tt.passed, got, tt.match)
		}
		if allocs := testing.AllocsPerRun(10, func() { matchV1(tt.passed, want) }); allocs != 0 {
			t.Errorf("matchV1(%q): %.0f allocations, want 0", tt.passed, allocs)
		}
	}
}
