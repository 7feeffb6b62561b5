package gatewayd

import (
	"testing"
	"time"
)

func TestPace(t *testing.T) {
	for _, tc := range []struct{ pass, rest time.Duration }{
		{0, 0},
		{minPaced - 1, 0},
		{minPaced, minPaced},
		{300 * time.Millisecond, 300 * time.Millisecond},
	} {
		if got := pace(tc.pass); got != tc.rest {
			t.Errorf("pace(%v) = %v, want %v", tc.pass, got, tc.rest)
		}
	}
}
