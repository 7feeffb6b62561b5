package exports

import (
	"fmt"
	"testing"
)

func k(name string) Key { return Key{Namespace: "ns", Name: name} }

func TestKeysSince(t *testing.T) {
	gens := []genKeys{
		{gen: 3, keys: []Key{k("b")}},
		{gen: 4, keys: []Key{k("a"), k("b")}},
		{gen: 5, keys: []Key{k("c")}},
		{gen: 7, keys: []Key{k("d")}}, // 6 was not recorded
	}
	for _, tc := range []struct {
		from, to uint64
		want     string
		ok       bool
	}{
		{4, 4, "[]", true},
		{3, 4, "[ns/a ns/b]", true},
		{2, 5, "[ns/a ns/b ns/c]", true},
		{4, 5, "[ns/c]", true},
		{1, 4, "[]", false}, // 2 is older than the log
		{5, 7, "[]", false}, // 6 is missing
		{6, 7, "[ns/d]", true},
		{7, 8, "[]", false}, // from the future
		{5, 4, "[]", false}, // backwards
	} {
		t.Run(fmt.Sprintf("%d-%d", tc.from, tc.to), func(t *testing.T) {
			got, ok := keysSince(gens, tc.from, tc.to)
			if ok != tc.ok || (ok && fmt.Sprint(got) != tc.want) {
				t.Fatalf("got %v %v, want %s %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestChangeLogBounds(t *testing.T) {
	var l changeLog
	l.record(2, []Key{k("a")})
	l.record(3, []Key{k("c")})
	if got, ok := l.since(1, 3); !ok || fmt.Sprint(got) != "[ns/a ns/c]" {
		t.Fatalf("since(1, 3) = %v %v", got, ok)
	}
	for g := uint64(10); g < 10+2*maxChangeLog; g++ {
		l.record(g, []Key{k("x")})
	}
	if len(l.gens) > maxChangeLog {
		t.Fatalf("%d generations kept, bound %d", len(l.gens), maxChangeLog)
	}
	last := uint64(10 + 2*maxChangeLog - 1)
	if _, ok := l.since(last-10, last); !ok {
		t.Fatal("recent generations were dropped")
	}
}
