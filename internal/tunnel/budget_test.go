package tunnel

import (
	"errors"
	"testing"
)

// budgetLimits: 16 opening windows per key, 32 in all.
func budgetLimits() Limits {
	l := DefaultLimits()
	l.MaxStreamWindow = 1 << 20
	l.MaxCallerStreamMemory = 16 * initialWindow
	l.MaxTotalStreamMemory = 32 * initialWindow
	return l
}

// What each rule of streamBudget admits, step by step.
func TestStreamBudgetRules(t *testing.T) {
	const w = initialWindow
	type step struct {
		key     string
		opening bool  // an opening window, or growth
		n       int64 // bytes
		ok      bool
	}
	for _, tc := range []struct {
		name   string
		strict bool
		steps  []step
		reason string // the last refusal reported, strict only
	}{
		{"opening windows up to the caller's limit", true, []step{
			{"a", true, 16 * w, true}, {"a", true, w, false}, {"b", true, w, true},
		}, ReasonCallerStreamMemory},
		{"opening windows up to the total", true, []step{
			{"a", true, 16 * w, true}, {"b", true, 16 * w, true}, {"c", true, w, false},
		}, ReasonTotalStreamMemory},
		{"growth counts against the caller's limit", true, []step{
			{"a", false, 4 * w, true}, {"a", true, 12 * w, true}, {"a", true, w, false},
		}, ReasonCallerStreamMemory},
		{"growth up to a quarter of the caller's limit", true, []step{
			{"a", false, 4 * w, true}, {"a", false, 1, false}, {"b", false, 4 * w, true},
		}, ""},
		{"growth up to a quarter of the total", false, []step{
			{"a", false, 4 * w, true}, {"b", false, 4 * w, true}, {"c", false, 1, false},
		}, ""},
		{"egress counts opening windows without refusing them", false, []step{
			{"a", true, 64 * w, true}, {"a", false, 1, true},
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reason string
			b := newStreamBudget(budgetLimits(), tc.strict, func(r string) { reason = r })
			for i, s := range tc.steps {
				sp, _ := b.spans(s.key)()
				var prio uint8 = 128
				if s.opening {
					prio = 255
				}
				err := sp.ReserveMemory(int(s.n), prio)
				if (err == nil) != s.ok {
					t.Fatalf("step %d %+v: err %v", i, s, err)
				}
				if err != nil && !errors.Is(err, errStreamMemory) {
					t.Fatalf("step %d: %v, want errStreamMemory", i, err)
				}
			}
			if reason != tc.reason {
				t.Fatalf("reported %q, want %q", reason, tc.reason)
			}
		})
	}
}

// A span gives back everything at Done, once; a span that ended reserves
// nothing more, and keys that hold nothing are forgotten.
func TestStreamBudgetSpanLifecycle(t *testing.T) {
	b := newStreamBudget(budgetLimits(), true, func(string) {})
	sp, _ := b.spans("a")()
	if err := sp.ReserveMemory(initialWindow, 255); err != nil {
		t.Fatal(err)
	}
	if err := sp.ReserveMemory(initialWindow, 128); err != nil {
		t.Fatal(err)
	}
	if k, all := b.held("a"); k != 2*initialWindow || all != k {
		t.Fatalf("held %d, all %d", k, all)
	}
	sp.ReleaseMemory(initialWindow / 2)
	if k, _ := b.held("a"); k != 3*initialWindow/2 {
		t.Fatalf("after a partial release: %d", k)
	}
	sp.Done()
	sp.Done()
	if k, all := b.held("a"); k != 0 || all != 0 || len(b.keys) != 0 {
		t.Fatalf("after Done: key %d, all %d, keys %v", k, all, b.keys)
	}
	if err := sp.ReserveMemory(1, 128); err == nil {
		t.Fatal("an ended span reserved more")
	}
}

// Served streams are admitted up to half of each limit, at one opening
// window each, and discharged.
func TestStreamBudgetServedShare(t *testing.T) {
	b := newStreamBudget(budgetLimits(), true, func(string) {})
	for range 8 {
		if ok, _ := b.charge("a"); !ok {
			t.Fatal("refused within the caller's half")
		}
	}
	if ok, reason := b.charge("a"); ok || reason != ReasonCallerStreamMemory {
		t.Fatalf("ninth of a: %v %q", ok, reason)
	}
	for range 8 {
		if ok, _ := b.charge("b"); !ok {
			t.Fatal("refused b within its half")
		}
	}
	if ok, reason := b.charge("c"); ok || reason != ReasonTotalStreamMemory {
		t.Fatalf("c over the total's half: %v %q", ok, reason)
	}
	b.discharge("a")
	if ok, _ := b.charge("c"); !ok {
		t.Fatal("a discharge did not make room")
	}
}
