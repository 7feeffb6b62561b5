package feed

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"ferry.dev/ferry/internal/exports"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func exp(name string, mut ...func(*exports.Export)) exports.Export {
	e := exports.Export{
		Key:             exports.Key{Namespace: "ns", Name: name},
		Type:            exports.ClusterSetIP,
		Ports:           []exports.Port{{Name: "http", Protocol: "TCP", Port: 80}},
		SessionAffinity: "None",
		Created:         t0,
		ReadyEndpoints:  1,
	}
	for _, m := range mut {
		m(&e)
	}
	return e
}

func only(clusters ...string) func(*exports.Export) {
	return func(e *exports.Export) { e.AllowedClusters = append([]string{}, clusters...) }
}

func setOf(es ...exports.Export) map[exports.Key]exports.Export {
	m := map[exports.Key]exports.Export{}
	for _, e := range es {
		m[e.Key] = e
	}
	return m
}

func visibleTo(c string) func(*exports.Export) bool {
	return func(e *exports.Export) bool { return e.AllowedFor(c) }
}

func names(es []exports.Export) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func TestJournalDeltasFilterBeforeSending(t *testing.T) {
	p := exports.NewPublisher()
	j := newJournal(100, time.Now())
	pub := func(es ...exports.Export) uint64 {
		p.Publish(setOf(es...), nil)
		j.advance(p.Current())
		v, _ := j.view()
		return v
	}
	a, b := exp("a"), exp("b", only("north"))
	v1 := pub(a, b)
	if v, snap, _ := j.snapshot(visibleTo("west")); v != v1 || fmt.Sprint(names(slices.Collect(snap))) != "[a]" {
		t.Fatalf("west snapshot %v at %d", names(slices.Collect(snap)), v)
	}

	// A change to an export west may not see is invisible to west, even as
	// a delete, but north gets it.
	b2 := exp("b", only("north"), func(e *exports.Export) { e.ReadyEndpoints = 5 })
	v2 := pub(a, b2)
	if v2 <= v1 {
		t.Fatalf("version did not advance: %d -> %d", v1, v2)
	}
	if _, ups, dels, _, ok := j.delta(v1, visibleTo("west")); !ok || len(ups)+len(dels) != 0 {
		t.Fatalf("west delta %v %v %v", names(ups), dels, ok)
	}
	if _, ups, _, _, _ := j.delta(v1, visibleTo("north")); fmt.Sprint(names(ups)) != "[b]" {
		t.Fatalf("north delta %v", names(ups))
	}

	// Narrowing allowed-clusters deletes for the cluster that lost access;
	// widening upserts for the one that gained it.
	a2 := exp("a", only("north"))
	b3 := exp("b", func(e *exports.Export) { e.ReadyEndpoints = 5 })
	pub(a2, b3)
	_, ups, dels, _, _ := j.delta(v2, visibleTo("west"))
	if fmt.Sprint(names(ups), dels) != "[b] [ns/a]" {
		t.Fatalf("west after access change: upserts %v deletes %v", names(ups), dels)
	}
	// For north, a changed only in AllowedClusters, which it never sees.
	if _, ups, dels, _, _ := j.delta(v2, visibleTo("north")); len(ups)+len(dels) != 0 {
		t.Fatalf("north sees an AllowedClusters-only change: %v %v", names(ups), dels)
	}

	// Nor does any importer see a change of the local pods: pod addresses
	// never leave the cluster.
	// Nor does the version move, so the history is not spent on it.
	v3, _ := j.view()
	b4 := b3
	b4.LocalPods = []exports.LocalPod{{Hostname: "b-0", Addresses: []string{"10.1.0.7"}}}
	b4.LocalClusterIPs = []string{"10.96.0.7"}
	if v := pub(a2, b4); v != v3 {
		t.Fatalf("a change of local pods only moved the version %d -> %d", v3, v)
	}
	for _, c := range []string{"west", "north"} {
		if _, ups, dels, _, _ := j.delta(v3, visibleTo(c)); len(ups)+len(dels) != 0 {
			t.Fatalf("%s sees a LocalPods-only change: %v %v", c, names(ups), dels)
		}
	}

	// Status-only sets do not bump the version.
	before, _ := j.view()
	p.Publish(setOf(a2, b4), map[exports.Key]exports.Status{a2.Key: {Key: a2.Key}})
	j.advance(p.Current())
	if after, _ := j.view(); after != before {
		t.Fatalf("status change moved the version %d -> %d", before, after)
	}

	// Versions outside the history need a snapshot.
	for _, bad := range []uint64{1, before + 1, v1 - 1} {
		if _, _, _, _, ok := j.delta(bad, visibleTo("west")); ok {
			t.Errorf("delta from %d accepted", bad)
		}
	}
}

func TestJournalHistoryIsBounded(t *testing.T) {
	p := exports.NewPublisher()
	j := newJournal(10, time.Now())
	p.Publish(nil, nil)
	j.advance(p.Current())
	first, _ := j.view()
	var versions []uint64
	for i := range 40 {
		p.Publish(setOf(exp(fmt.Sprint("e", i))), nil) // one add, one delete
		j.advance(p.Current())
		v, _ := j.view()
		versions = append(versions, v)
	}
	if len(j.entries) > 10+10/4 {
		t.Fatalf("%d entries kept, limit 10", len(j.entries))
	}
	if _, _, _, _, ok := j.delta(first, visibleTo("west")); ok {
		t.Fatal("delta from a trimmed version")
	}
	_, ups, dels, _, ok := j.delta(versions[len(versions)-3], visibleTo("west"))
	if !ok || fmt.Sprint(names(ups), dels) != "[e39] [ns/e37]" {
		t.Fatalf("recent delta: %v %v %v", names(ups), dels, ok)
	}
}

func TestEpochsOrderRestarts(t *testing.T) {
	a := newEpoch(t0)
	b := newEpoch(t0.Add(2 * time.Second))
	if b <= a {
		t.Fatalf("epoch of a later start %d <= %d", b, a)
	}
	if a<<seqBits>>seqBits != a {
		t.Fatal("epoch does not fit beside the sequence")
	}
}

func TestVisibleChanges(t *testing.T) {
	a, b := exp("a"), exp("b")
	localOnly := exp("a", func(e *exports.Export) { e.LocalClusterIPs = []string{"10.0.0.1"} })
	ready := exp("a", func(e *exports.Export) { e.ReadyEndpoints = 3 })
	keys := func(es ...exports.Export) []exports.Key {
		var out []exports.Key
		for _, e := range es {
			out = append(out, e.Key)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		old, new []exports.Export
		changed  []exports.Key
		want     string
	}{
		{"nothing changed", []exports.Export{a}, []exports.Export{a}, nil, "[]"},
		{"added", []exports.Export{a}, []exports.Export{a, b}, keys(b), "[ns/b]"},
		{"removed", []exports.Export{a, b}, []exports.Export{a}, keys(b), "[ns/b]"},
		{"changed for importers", []exports.Export{a}, []exports.Export{ready}, keys(a), "[ns/a]"},
		{"changed only locally", []exports.Export{a}, []exports.Export{localOnly}, keys(a), "[]"},
		{"mixed, in order", []exports.Export{a}, []exports.Export{localOnly, b}, keys(a, b), "[ns/b]"},
		{"absent from both", []exports.Export{a}, []exports.Export{a}, keys(b), "[]"},
		// Only the listed keys are looked at: the cost is O(changed).
		{"unlisted change ignored", []exports.Export{a}, []exports.Export{ready}, nil, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := exports.NewPublisher()
			p.Publish(setOf(tc.old...), nil)
			old := p.Current()
			p.Publish(setOf(tc.new...), nil)
			changed := append([]exports.Key(nil), tc.changed...)
			got := visibleChanges(old, p.Current(), changed)
			var s []string
			for _, k := range got {
				s = append(s, k.String())
			}
			if fmt.Sprintf("[%s]", strings.Join(s, " ")) != tc.want {
				t.Fatalf("got %v, want %s", s, tc.want)
			}
			if fmt.Sprint(changed) != fmt.Sprint(tc.changed) {
				t.Fatalf("changed was modified: %v, was %v", changed, tc.changed)
			}
		})
	}
}

// The journal shares each Set with the gateway's other followers, which
// read the same ChangedSince list; filtering it in place once hid
// local-only changes (LocalPods) from them.
func TestJournalLeavesTheSetsChangesAlone(t *testing.T) {
	p := exports.NewPublisher()
	j := newJournal(100, time.Now())
	a, b := exp("a"), exp("b")
	p.Publish(setOf(a, b), nil)
	prev := p.Current()
	j.advance(prev)
	p.Publish(setOf(exp("a", func(e *exports.Export) { e.LocalClusterIPs = []string{"10.0.0.1"} }), exp("b", func(e *exports.Export) { e.ReadyEndpoints = 2 })), nil)
	cur := p.Current()
	before := fmt.Sprint(cur.ChangedSince(prev))
	j.advance(cur)
	if after := fmt.Sprint(cur.ChangedSince(prev)); after != before || after != "[ns/a ns/b]" {
		t.Fatalf("ChangedSince after advance: %s, before %s", after, before)
	}
}

// lister is a source's record of changed keys, as exportwatch.Watcher
// keeps it; calls counts its use.
type lister struct {
	keys  []exports.Key
	calls int
}

func (l *lister) KeysChangedSince(prev, cur *exports.Set) ([]exports.Key, bool) {
	l.calls++
	return l.keys, l.keys != nil
}

// A journal that skipped Sets asks the source what changed rather than
// comparing every export, and falls back to comparing when it cannot say.
func TestJournalSkippingSetsUsesTheSourcesChanges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keys  []exports.Key
		calls int
		want  string
	}{
		{"source knows", []exports.Key{{Namespace: "ns", Name: "b"}, {Namespace: "ns", Name: "zz"}}, 1, "[b]"},
		{"source forgot", nil, 1, "[b]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := exports.NewPublisher()
			l := &lister{keys: tc.keys}
			j := newJournal(100, time.Now())
			j.lister = l
			p.Publish(setOf(exp("a"), exp("b")), nil)
			j.advance(p.Current())
			v1, _ := j.view()
			p.Publish(setOf(exp("a"), exp("b"), exp("zz")), nil) // skipped
			p.Publish(setOf(exp("a"), exp("b", func(e *exports.Export) { e.ReadyEndpoints = 7 })), nil)
			j.advance(p.Current())
			if l.calls != tc.calls {
				t.Fatalf("%d calls to the source, want %d", l.calls, tc.calls)
			}
			if _, ups, dels, _, ok := j.delta(v1, visibleTo("west")); !ok || fmt.Sprint(names(ups)) != tc.want || len(dels) != 0 {
				t.Fatalf("delta %v %v %v", names(ups), dels, ok)
			}
			// The next Set follows at once: no need to ask.
			p.Publish(setOf(exp("a")), nil)
			j.advance(p.Current())
			if l.calls != tc.calls {
				t.Fatalf("asked the source about an immediate successor")
			}
		})
	}
}
