package importer

import (
	"fmt"
	"testing"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
)

// TestLedgerScopedReservations: two Links share the egress range through
// the ledger before any claim is in the record. A scoped pass replaces the
// reservations of its own Services only, and never hands out a port that
// another Link, or the same Link outside the scope, reserved.
func TestLedgerScopedReservations(t *testing.T) {
	l := newPortLedger()
	r := contract.Range{Min: 40000, Max: 40009}
	input := func(cluster string, names ...string) mirror.Input {
		in := mirror.Input{Link: mirror.Link{Name: cluster, Cluster: cluster}, Ports: r}
		for _, n := range names {
			in.Exports = append(in.Exports, exports.TCP("shop", n, 80))
		}
		return in
	}
	key := func(svc, cluster string) mirror.PortKey {
		return mirror.PortKey{Namespace: "shop", Service: contract.MirrorName(svc, cluster), Port: 80}
	}
	scope := func(cluster string, svcs ...string) map[string]bool {
		m := map[string]bool{}
		for _, s := range svcs {
			m["shop/"+contract.MirrorName(s, cluster)] = true
		}
		return m
	}
	reserved := func(link string) string { return fmt.Sprint(l.reserved[link].ports) }

	east := l.desired("east", input("east", "a", "b"), mirror.TakenMap{}, nil)
	if east.Ports[key("a", "east")] != 40000 || east.Ports[key("b", "east")] != 40001 {
		t.Fatalf("east full pass: %v", east.Ports)
	}
	// north's scoped pass sees east's reservations as taken.
	north := l.desired("north", input("north", "a"), mirror.TakenMap{}, scope("north", "a"))
	if p := north.Ports[key("a", "north")]; p != 40002 {
		t.Fatalf("north got port %d, want 40002 (east reserved 40000 and 40001)", p)
	}
	// east's scoped pass of c keeps a and b reserved and takes the next port.
	c := l.desired("east", input("east", "c"), mirror.TakenMap{}, scope("east", "c"))
	if p := c.Ports[key("c", "east")]; p != 40003 {
		t.Fatalf("east's c got port %d, want 40003", p)
	}
	if got := len(l.reserved["east"].ports); got != 3 {
		t.Fatalf("east reserves %s, want a, b and c", reserved("east"))
	}
	// b unexported in a scoped pass: only b's reservation goes.
	l.desired("east", input("east"), mirror.TakenMap{}, scope("east", "b"))
	if _, ok := l.reserved["east"].ports[40001]; ok || len(l.reserved["east"].ports) != 2 {
		t.Fatalf("after b's scoped pass east reserves %s, want a and c", reserved("east"))
	}
	// A claim in the record wins over a reservation: north's claim on
	// 40004 makes east skip it even though nothing reserved it.
	d := l.desired("east", input("east", "d"), mirror.TakenMap{40004: key("x", "north")}, scope("east", "d"))
	if p := d.Ports[key("d", "east")]; p != 40001 {
		t.Fatalf("east's d got port %d, want 40001 (freed by b)", p)
	}
	// A full pass replaces the Link's whole reservation.
	l.desired("east", input("east", "a"), mirror.TakenMap{}, nil)
	if got := reserved("east"); got != "map[40000:shop/a-east:80]" {
		t.Fatalf("after a full pass east reserves %s", got)
	}
	l.release("east")
	if _, ok := l.reserved["east"]; ok {
		t.Fatal("release kept east's reservation")
	}
}
