package tunnel

import "testing"

// The limits added for findings 4 and 6 are refused when zero, and the
// stream memory limits when they cannot work.
func TestLimitsRefuseZeroMemoryAndLifetime(t *testing.T) {
	for name, mutate := range map[string]func(*Limits){
		"MaxCallerStreamMemory zero":        func(l *Limits) { l.MaxCallerStreamMemory = 0 },
		"MaxTotalStreamMemory zero":         func(l *Limits) { l.MaxTotalStreamMemory = 0 },
		"MaxCallerStreamMemory < 4 windows": func(l *Limits) { l.MaxCallerStreamMemory = 3 * int64(l.MaxStreamWindow) },
		"MaxTotalStreamMemory < caller":     func(l *Limits) { l.MaxTotalStreamMemory = l.MaxCallerStreamMemory - 1 },
		"MaxConnectionAge zero":             func(l *Limits) { l.MaxConnectionAge = 0 },
		"MaxConnectionAgeGrace zero":        func(l *Limits) { l.MaxConnectionAgeGrace = 0 },
		"TrustCheckInterval zero":           func(l *Limits) { l.TrustCheckInterval = 0 },
	} {
		l := DefaultLimits()
		mutate(&l)
		if err := l.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
}
