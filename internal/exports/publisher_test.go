package exports

import (
	"fmt"
	"testing"
)

func TestApply(t *testing.T) {
	k := func(name string) Key { return Key{Namespace: "ns", Name: name} }
	tcp := func(name string, port int32) Export { return TCP("ns", name, port) }
	status := func(name string, gen int64) Status { return Status{Key: k(name), Generation: gen, Valid: true} }
	a, b, a2 := tcp("a", 80), tcp("b", 80), tcp("a", 81)
	sa, sb, sa2 := status("a", 1), status("b", 1), status("a", 2)
	invalid := Status{Key: k("b"), Generation: 1, Reason: ReasonNoService}
	invalidC := Status{Key: k("c"), Generation: 1, Reason: ReasonNoService}
	for _, tc := range []struct {
		name     string
		changes  []Change
		exports  string // "": nothing published
		statuses string
		touched  string // keys whose export or status changed
		changed  string // keys whose export changed (ChangedSince)
	}{
		{"nothing", nil, "", "", "", ""},
		{"same export and status", []Change{{a.Key, &a, &sa}}, "", "", "", ""},
		{"export changed", []Change{{a.Key, &a2, &sa}}, "[a:81 b:80]", "[a/1 b/1]", "[ns/a]", "[ns/a]"},
		{"status changed alone", []Change{{a.Key, &a, &sa2}}, "[a:80 b:80]", "[a/2 b/1]", "[ns/a]", "[]"},
		{"became invalid", []Change{{b.Key, nil, &invalid}}, "[a:80]", "[a/1 b/1]", "[ns/b]", "[ns/b]"},
		{"ServiceExport gone", []Change{{b.Key, nil, nil}}, "[a:80]", "[a/1]", "[ns/b]", "[ns/b]"},
		{"only what differs is listed", []Change{{b.Key, &b, &sb}, {a.Key, &a2, &sa}}, "[a:81 b:80]", "[a/1 b/1]", "[ns/a]", "[ns/a]"},
		{"new key", []Change{{k("c"), nil, &invalidC}}, "[a:80 b:80]", "[a/1 b/1 c/1]", "[ns/c]", "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPublisher()
			p.Publish(Of(a, b), map[Key]Status{a.Key: sa, b.Key: sb})
			old := p.Current()
			published := p.Apply(tc.changes)
			if published != (tc.exports != "") {
				t.Fatalf("published %v", published)
			}
			if !published {
				if p.Current() != old {
					t.Fatal("a Set for no change")
				}
				return
			}
			cur := p.Current()
			if cur.Generation != old.Generation+1 {
				t.Errorf("generation %d, want %d", cur.Generation, old.Generation+1)
			}
			touched, ok := p.KeysChangedSince(old, cur)
			if !ok {
				t.Fatal("the Publisher does not know what its last publish changed")
			}
			if fmt.Sprint(touched) != tc.touched {
				t.Errorf("touched %v, want %s", touched, tc.touched)
			}
			if got := fmt.Sprint(cur.ChangedSince(old)); got != tc.changed {
				t.Errorf("ChangedSince %s, want %s", got, tc.changed)
			}
			if got := describe(cur); got != tc.exports+" "+tc.statuses {
				t.Errorf("set %s, want %s %s", got, tc.exports, tc.statuses)
			}
			// A Set is immutable: the one readers held is unchanged.
			if got := describe(old); got != "[a:80 b:80] [a/1 b/1]" {
				t.Errorf("the old Set became %s", got)
			}
			select {
			case <-old.Changed():
			default:
				t.Error("the old Set's Changed is open")
			}
		})
	}
}

// TestSetOrderAndLookups: a Set yields keys in CompareKeys order, a
// namespace that is a prefix of another included, and finds each by key.
func TestSetOrderAndLookups(t *testing.T) {
	es := []Export{TCP("ab", "x", 1), TCP("a", "z", 1), TCP("a", "b", 1), TCP("a-b", "a", 1), TCP("b", "a", 1)}
	p := NewPublisher()
	p.Publish(Of(es...), nil)
	s := p.Current()
	var got []Key
	for k, e := range s.Exports() {
		if e.Key != k {
			t.Fatalf("key %v yields export %v", k, e.Key)
		}
		got = append(got, k)
	}
	want := []Key{es[0].Key, es[1].Key, es[2].Key, es[3].Key, es[4].Key}
	SortKeys(want)
	if fmt.Sprint(got) != fmt.Sprint(want) || s.Len() != len(es) {
		t.Fatalf("order %v, want %v", got, want)
	}
	for _, e := range es {
		if g, ok := s.Export(e.Key); !ok || !g.Equal(&e) {
			t.Fatalf("Export(%v) = %v, %v", e.Key, g, ok)
		}
	}
	if _, ok := s.Export(Key{Namespace: "a", Name: ""}); ok {
		t.Fatal("found a key that is a prefix of others")
	}
	if len(s.Map()) != len(es) {
		t.Fatal("Map")
	}
}

func describe(s *Set) string {
	var es, sts []string
	for k, e := range s.Exports() {
		es = append(es, fmt.Sprintf("%s:%d", k.Name, e.Ports[0].Port))
	}
	for k, st := range s.Statuses() {
		sts = append(sts, fmt.Sprintf("%s/%d", k.Name, st.Generation))
	}
	return fmt.Sprint(es) + " " + fmt.Sprint(sts)
}

func BenchmarkSetExport(b *testing.B) {
	es := make([]Export, 10000)
	for i := range es {
		es[i] = TCP(fmt.Sprintf("ns-%d", i%50), fmt.Sprintf("svc-%05d", i), 80)
	}
	p := NewPublisher()
	p.Publish(Of(es...), nil)
	s := p.Current()
	k := es[4242].Key
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Export(k); !ok {
			b.Fatal("missing")
		}
	}
}
