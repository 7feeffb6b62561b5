package exports

import (
	"context"
	"testing"
	"time"
)

func TestPublisherPublishesOnlyChanges(t *testing.T) {
	p := NewPublisher()
	s0 := p.Current()
	if s0.Synced || s0.Generation != 0 {
		t.Fatalf("initial set %+v", s0)
	}
	// The first publish happens even when empty: "synced, nothing exported"
	// differs from "not synced yet".
	if !p.Publish(nil, nil) {
		t.Fatal("first (empty) publish skipped")
	}
	select {
	case <-s0.Changed():
	default:
		t.Fatal("Changed not closed")
	}
	s1 := p.Current()
	if !s1.Synced || s1.Generation != 1 {
		t.Fatalf("set %+v", s1)
	}
	a := base()
	if p.Publish(map[Key]Export{}, map[Key]Status{}) {
		t.Fatal("unchanged set published")
	}
	if !p.Publish(map[Key]Export{a.Key: a}, nil) {
		t.Fatal("change not published")
	}
	s2 := p.Current()
	if got := s2.ChangedSince(s1); len(got) != 1 || got[0] != a.Key {
		t.Fatalf("ChangedSince = %v", got)
	}
	b := base(func(e *Export) { e.Name = "bar" })
	same := base()
	if p.Publish(map[Key]Export{a.Key: same}, nil) {
		t.Fatal("equal export published")
	}
	p.Publish(map[Key]Export{a.Key: a, b.Key: b}, nil)
	p.Publish(map[Key]Export{b.Key: b}, nil)
	s4 := p.Current()
	// Skipping generations falls back to a full diff.
	if got := s4.ChangedSince(s1); len(got) != 1 || got[0] != b.Key {
		t.Fatalf("ChangedSince(s1) = %v", got)
	}
	// A status-only change is published (the status writer needs it) but
	// changes no export.
	if !p.Publish(map[Key]Export{b.Key: b}, map[Key]Status{b.Key: {Key: b.Key}}) {
		t.Fatal("status change not published")
	}
	if got := p.Current().ChangedSince(s4); len(got) != 0 {
		t.Fatalf("status change reported export changes %v", got)
	}
}

func TestEqualAllowedClustersNilVersusEmpty(t *testing.T) {
	a, b := base(), base(func(e *Export) { e.AllowedClusters = []string{} })
	if a.Equal(&b) {
		t.Fatal("nil (every cluster) equals empty (no cluster)")
	}
	if !a.AllowedFor("x") || b.AllowedFor("x") {
		t.Fatal("AllowedFor")
	}
}

func TestFollowCoalescesAndSkipsUnsynced(t *testing.T) {
	p := NewPublisher()
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan uint64, 10)
	done := make(chan struct{})
	go func() { Follow(ctx, p, func(s *Set) { got <- s.Generation }); close(done) }()
	a := base()
	p.Publish(map[Key]Export{a.Key: a}, nil)
	if g := <-got; g != 1 {
		t.Fatalf("first call with generation %d", g)
	}
	cancel()
	<-done
}

func base(mut ...func(*Export)) Export {
	e := Export{
		Key:             Key{Namespace: "ns", Name: "foo"},
		Type:            ClusterSetIP,
		Ports:           []Port{{Name: "http", Protocol: "TCP", Port: 80}},
		SessionAffinity: "None",
		Created:         time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	for _, m := range mut {
		m(&e)
	}
	return e
}
