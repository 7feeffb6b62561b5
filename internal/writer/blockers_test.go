package writer

import (
	"slices"
	"testing"
)

func TestBlockers(t *testing.T) {
	var b Blockers
	svc := ObjectKey("Service", "shop", "web-east")
	if got := b.Note("east", []string{svc}, []string{svc}); !slices.Equal(got, []string{svc}) {
		t.Fatalf("first note: fresh %v, want the problem", got)
	}
	if got := b.Note("east", []string{svc}, []string{svc}); len(got) != 0 {
		t.Fatalf("same problem again: fresh %v, want none (announced once)", got)
	}
	b.Note("north", []string{svc}, []string{svc, "PortsExhausted"})
	if got := b.Owners(svc); !slices.Equal(got, []string{"east", "north"}) || !b.Blocks(svc) {
		t.Fatalf("owners %v, want east and north", got)
	}
	// east no longer blocked: only north is woken by the object.
	b.Note("east", nil, nil)
	if got := b.Owners(svc); !slices.Equal(got, []string{"north"}) {
		t.Fatalf("owners %v, want north", got)
	}
	// A problem that went away and came back is announced again.
	if got := b.Note("east", []string{svc}, []string{svc}); !slices.Equal(got, []string{svc}) {
		t.Fatalf("returning problem: fresh %v", got)
	}
	b.Forget("east")
	b.Forget("north")
	if b.Blocks(svc) || len(b.Owners(svc)) != 0 {
		t.Fatal("forgotten owners still blocked")
	}
}
