package claims

import (
	"testing"
	"time"
)

func TestRetryBacksOffAndResets(t *testing.T) {
	var r Retry
	east, north := LinkOwner("east"), LinkOwner("north")
	var got []time.Duration
	for range 11 {
		got = append(got, r.After(east, 1))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, RetryMax, RetryMax}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("retry %d = %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
	if d := r.After(north, 3); d != RetryFirst {
		t.Errorf("another owner starts at %v, want %v", d, RetryFirst)
	}
	if d := r.After(east, 0); d != 0 {
		t.Errorf("nothing pending: %v, want 0", d)
	}
	if d := r.After(east, 1); d != RetryFirst {
		t.Errorf("after a reset: %v, want %v", d, RetryFirst)
	}
}
