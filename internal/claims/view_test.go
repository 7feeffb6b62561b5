package claims

import (
	"errors"
	"testing"

	"ferry.dev/ferry/internal/mirror"
)

func TestView(t *testing.T) {
	east, north := LinkOwner("east"), LinkOwner("north")
	s := newSnapshot()
	s.Table = Table{
		41000: {Owner: east, Namespace: "shop", Service: "web-east", Port: 80},
		41001: {Owner: east, Namespace: "shop", Service: "web-east", Port: 443},
		41002: {Owner: east, Namespace: "shop", Service: "db-east", Port: 5432},
		41003: {Owner: north, Namespace: "shop", Service: "web-north", Port: 80},
	}
	s.Broken = map[int32]error{42000: errors.New("garbled")}
	inScope := func(ns, svc string) bool { return ns == "shop" && svc == "web-east" }
	taken, mine := s.View(east, []ServiceName{{Namespace: "shop", Name: "web-east"}}, inScope)

	if len(mine) != 2 || mine[mirror.PortKey{Namespace: "shop", Service: "web-east", Port: 80}] != 41000 ||
		mine[mirror.PortKey{Namespace: "shop", Service: "web-east", Port: 443}] != 41001 {
		t.Fatalf("mine = %v, want web-east's two claims only", mine)
	}
	for _, tc := range []struct {
		name string
		port int32
		held bool
		by   mirror.PortKey
	}{
		{"the owner's claim in scope is the pass's to decide", 41000, false, mirror.PortKey{}},
		{"the owner's claim outside the scope stays held", 41002, true, mirror.PortKey{Namespace: "shop", Service: "db-east", Port: 5432}},
		{"another owner's claim", 41003, true, mirror.PortKey{Namespace: "shop", Service: "web-north", Port: 80}},
		{"a free port", 41004, false, mirror.PortKey{}},
		{"a port of a broken shard is held by nobody usable", 42017, true, mirror.PortKey{}},
	} {
		by, held := taken.Holder(tc.port)
		if held != tc.held || by != tc.by {
			t.Errorf("%s: Holder(%d) = %v, %v; want %v, %v", tc.name, tc.port, by, held, tc.by, tc.held)
		}
	}
	if !s.HasOwner(north) || s.HasOwner(LinkOwner("west")) {
		t.Error("HasOwner")
	}
	// A hand-made Snapshot (no index) answers the same.
	bare := Snapshot{Table: s.Table, Broken: s.Broken}
	if _, m := bare.View(east, []ServiceName{{Namespace: "shop", Name: "web-east"}}, inScope); len(m) != 2 {
		t.Fatalf("bare snapshot: mine = %v", m)
	}
}
