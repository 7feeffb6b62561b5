package importer

import (
	"slices"
	"testing"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
)

func key(ns, name string) exports.Key { return exports.Key{Namespace: ns, Name: name} }

func TestPendingTouchAndTake(t *testing.T) {
	a, b, c := key("x", "a"), key("x", "b"), key("y", "c")
	type touch struct {
		all  bool
		keys []exports.Key
	}
	for _, tc := range []struct {
		name     string
		touches  []touch
		wantAll  bool
		wantKeys []exports.Key
	}{
		{name: "a Link never seen is due a full pass", wantAll: true},
		{name: "keys are deduplicated and sorted", touches: []touch{{keys: []exports.Key{c, a}}, {keys: []exports.Key{a, b}}},
			wantKeys: []exports.Key{a, b, c}},
		{name: "all swallows keys before it", touches: []touch{{keys: []exports.Key{a}}, {all: true}}, wantAll: true},
		{name: "all swallows keys after it", touches: []touch{{all: true}, {keys: []exports.Key{b}}}, wantAll: true},
		{name: "a wake with nothing to do", touches: []touch{{}}, wantKeys: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPending()
			if len(tc.touches) > 0 {
				p.take("l") // the Link is known: its first full pass has run
			}
			for _, to := range tc.touches {
				p.touch("l", to.all, to.keys...)
			}
			all, keys := p.take("l")
			if all != tc.wantAll || !slices.Equal(keys, tc.wantKeys) {
				t.Fatalf("take = %v %v; want %v %v", all, keys, tc.wantAll, tc.wantKeys)
			}
			if all, keys := p.take("l"); all || len(keys) != 0 {
				t.Fatalf("second take = %v %v; want nothing: take clears", all, keys)
			}
		})
	}
}

func TestPendingForgetMakesTheNextPassFull(t *testing.T) {
	p := newPending()
	p.take("l")
	p.touch("l", false, key("x", "a"))
	p.forget("l")
	if all, _ := p.take("l"); !all {
		t.Fatal("a forgotten Link (deleted, then created again) must start with a full pass")
	}
}

func TestTally(t *testing.T) {
	a, b, c := key("x", "a"), key("x", "b"), key("x", "c")
	clash := mirror.Problem{Export: b, Reason: mirror.NameClash, Object: "Service x/b-east"}
	noPorts := mirror.Problem{Export: c, Reason: mirror.NoTCPPorts}
	tl := newTally()
	tl.reset(mirror.State{ImportedKeys: []exports.Key{a}, Problems: []mirror.Problem{clash, noPorts}})
	if st := tl.state(); st.Imported != 1 || !slices.Equal(st.Problems, []mirror.Problem{clash, noPorts}) {
		t.Fatalf("after reset: %+v", st)
	}
	// A scoped pass over b and c: b's clash is gone and it is imported; c
	// is still refused; a, outside the scope, is untouched.
	tl.set([]exports.Key{b, c}, mirror.State{ImportedKeys: []exports.Key{b}, Problems: []mirror.Problem{noPorts}})
	if st := tl.state(); st.Imported != 2 || !slices.Equal(st.Problems, []mirror.Problem{noPorts}) {
		t.Fatalf("after a scoped pass over b, c: %+v", st)
	}
	// a is unexported: a scoped pass over a finds nothing.
	tl.set([]exports.Key{a}, mirror.State{})
	if st := tl.state(); st.Imported != 1 {
		t.Fatalf("after a's unexport: %+v", st)
	}
	// A full pass replaces everything.
	tl.reset(mirror.State{})
	if st := tl.state(); st.Imported != 0 || len(st.Problems) != 0 {
		t.Fatalf("after an empty full pass: %+v", st)
	}
}
