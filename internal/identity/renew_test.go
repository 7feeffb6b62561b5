package identity_test

import (
	"crypto/x509"
	"testing"
	"time"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
)

func TestNeedsRenewal(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	leaf := &x509.Certificate{NotBefore: start, NotAfter: start.Add(24 * time.Hour)}
	if got, want := identity.RenewalTime(leaf), start.Add(16*time.Hour); !got.Equal(want) {
		t.Fatalf("RenewalTime = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{0, false}, {16*time.Hour - time.Second, false}, {16 * time.Hour, true}, {30 * time.Hour, true},
	} {
		if got := identity.NeedsRenewal(leaf, start.Add(tc.at)); got != tc.want {
			t.Errorf("NeedsRenewal at +%s = %v, want %v", tc.at, got, tc.want)
		}
	}
	if !identity.NeedsRenewal(nil, start) {
		t.Error("a missing leaf needs issuing")
	}
	if got := identity.TimeLeft(leaf, start.Add(20*time.Hour)); got != 4*time.Hour {
		t.Errorf("TimeLeft = %s", got)
	}
}

// A freshly issued leaf with a short test lifetime must not be due for
// renewal at once, or a controller would reissue in a loop.
func TestShortLivedLeafIsNotImmediatelyDue(t *testing.T) {
	now := time.Now()
	root, _ := identity.NewRoot("ferry.local", time.Hour, identity.WithClock(func() time.Time { return now }))
	issuer, _ := root.NewIssuer("east", 30*time.Minute)
	c, err := issuer.IssueLeaf(contract.GatewayID("ferry.local", "east"), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if identity.NeedsRenewal(c.Leaf, now) {
		t.Fatalf("leaf valid %s..%s due at issuance", c.Leaf.NotBefore, c.Leaf.NotAfter)
	}
	if !identity.NeedsRenewal(c.Leaf, now.Add(2*time.Second)) {
		t.Fatal("leaf not due at two thirds of its life")
	}
}
