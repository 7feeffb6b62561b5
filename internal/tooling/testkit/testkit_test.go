package testkit

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	start := time.Now()
	Eventually(t, "third check", func() bool { return n.Add(1) >= 3 })
	if n.Load() != 3 {
		t.Fatalf("checked %d times, want 3", n.Load())
	}
	if d := time.Since(start); d > Wait/2 {
		t.Fatalf("took %v: it waited instead of polling", d)
	}
}

// fakeTB records a failure instead of ending the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func TestEventuallyWithinFailsAtTheDeadline(t *testing.T) {
	f := &fakeTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != f {
				panic(r)
			}
		}()
		EventuallyWithin(f, 30*time.Millisecond, "never", func() bool { return false })
	}()
	if f.failed == "" {
		t.Fatal("a condition that never holds did not fail the test")
	}
}

func TestLoggerIsQuietByDefault(t *testing.T) {
	t.Setenv(LogEnv, "")
	if Logger().Enabled(t.Context(), 12) {
		t.Fatal("the default test logger writes")
	}
	t.Setenv(LogEnv, "1")
	if !Logger().Enabled(t.Context(), -4) {
		t.Fatal("FERRY_TEST_LOG=1 does not enable debug logs")
	}
}
