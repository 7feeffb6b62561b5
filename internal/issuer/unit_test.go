package issuer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
)

func TestAssess(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	leaf := &x509.Certificate{NotBefore: start, NotAfter: start.Add(24 * time.Hour)}
	fail := errors.New("no issuer")
	cases := []struct {
		at   time.Duration
		err  error
		want string
	}{
		{17 * time.Hour, nil, ReasonCurrent},
		{17 * time.Hour, fail, ReasonRenewalFailing},
		{20*time.Hour - time.Second, fail, ReasonRenewalFailing},
		{20*time.Hour + time.Second, fail, ReasonExpiring}, // under 4h (a sixth) left
		{24 * time.Hour, fail, ReasonExpired},
	}
	for _, c := range cases {
		if got := assess(leaf, start.Add(c.at), c.err); got != c.want {
			t.Errorf("at %s err %v: %s, want %s", c.at, c.err, got, c.want)
		}
	}
	if got := assess(nil, start, fail); got != ReasonMissing {
		t.Errorf("no leaf: %s", got)
	}
	if !expiring(ReasonMissing) || expiring(ReasonRenewalFailing) {
		t.Error("expiring()")
	}
}

func TestReissueReason(t *testing.T) {
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	i := &Issuer{opts: Options{MeshDomain: mesh.Domain, LeafTTL: time.Hour}, ca: east.Issuer}
	gw := east.GatewayID()
	fresh, err := east.Issuer.IssueLeaf(gw, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if why := i.reissueReason(fresh, gw, now); why != "" {
		t.Fatalf("fresh leaf: %s", why)
	}
	other, err := mesh.Root.NewIssuer("east", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	long, err := east.Issuer.IssueLeaf(gw, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fromOther, err := other.IssueLeaf(gw, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		cert *tls.Certificate
		id   identity.ID
		at   time.Time
	}{
		"missing":             {nil, gw, now},
		"wrong identity":      {fresh, east.ControllerID(), now},
		"due":                 {fresh, gw, identity.RenewalTime(fresh.Leaf)},
		"other issuer":        {fromOther, gw, now},
		"longer than the TTL": {long, gw, now},
	} {
		if why := i.reissueReason(c.cert, c.id, c.at); why == "" {
			t.Errorf("%s: kept", name)
		}
	}
	// Without an issuer only the leaf itself is judged.
	i.ca = nil
	if why := i.reissueReason(fromOther, gw, now); why != "" {
		t.Errorf("no issuer: %s", why)
	}
}

// A tick the loop did not consume (it woke for a Secret change instead)
// must not block the next one: a fake clock's Step sends under its lock, and
// a blocked send there deadlocked TestExpiredIssuerIsNotUsed under load,
// with the issuer's loop waiting in Now for that lock.
func TestRearmDrainsAStaleTick(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	timer := clk.NewTimer(time.Second)
	clk.Step(time.Second) // fires; nobody reads it
	rearm(timer, time.Second)
	stepped := make(chan struct{})
	go func() {
		clk.Step(time.Second)
		close(stepped)
	}()
	select {
	case <-stepped:
	case <-time.After(5 * time.Second):
		t.Fatal("Step blocked on the stale tick")
	}
	select {
	case <-timer.C():
	default:
		t.Fatal("the rearmed timer did not fire")
	}
}
