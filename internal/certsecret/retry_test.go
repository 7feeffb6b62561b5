package certsecret

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/identity/identitytest"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func lastErr(l *Loader) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// A leaf refused as not yet valid (the controller's clock runs ahead of the
// gateway's by more than the backdate) is taken once the gateway's clock
// reaches its NotBefore, although the Secret never changes again.
func TestLoaderRechecksNotYetValidLeaf(t *testing.T) {
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "certsecret")
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	leaf := east.Leaf(t, east.GatewayID())
	c.PutSecret(t, ns, contract.GatewayTLSSecret, leafData(t, leaf, mesh.Bundle))

	clock := &fakeClock{now: leaf.Leaf.NotBefore.Add(-time.Minute)}
	l, _ := startLoader(t, c.Kube, Options{
		Namespace: ns, Expect: east.GatewayID(), Now: clock.Now, RecheckInterval: 20 * time.Millisecond,
	})
	testkit.Eventually(t, "refusal", func() bool { return errors.Is(lastErr(l), identity.ErrNotYetValid) })
	if l.Source().Certificate() != nil || l.Ready() == nil {
		t.Fatal("a leaf that is not valid yet was loaded")
	}
	time.Sleep(100 * time.Millisecond) // several rechecks, all still refused
	if l.Source().Certificate() != nil {
		t.Fatal("a leaf that is not valid yet was loaded")
	}

	clock.Set(leaf.Leaf.NotBefore.Add(time.Second))
	testkit.Eventually(t, "load without a Secret change", func() bool { return l.Ready() == nil })
	if serialOf(l.Source()).Cmp(leaf.Leaf.SerialNumber) != 0 {
		t.Fatalf("loaded %x, want %x", serialOf(l.Source()), leaf.Leaf.SerialNumber)
	}
	if got := testutil.ToFloat64(l.metrics.rejected); got != 1 {
		t.Errorf("rejected counted %v times, want once however often it was rechecked", got)
	}
}

// With a long RecheckInterval the loader still wakes at the leaf's
// NotBefore rather than an interval later.
func TestLoaderWakesAtNotBefore(t *testing.T) {
	c := shared.Cluster(t)
	ns := c.TestNamespace(t, "certsecret")
	mesh := identitytest.NewMesh(t, "", "east")
	east := mesh.Cluster(t, "east")
	leaf := east.Leaf(t, east.GatewayID())
	c.PutSecret(t, ns, contract.GatewayTLSSecret, leafData(t, leaf, mesh.Bundle))

	// The gateway's clock lags so that NotBefore is three seconds ahead of it.
	lag := time.Since(leaf.Leaf.NotBefore) + 3*time.Second
	l, _ := startLoader(t, c.Kube, Options{
		Namespace: ns, Expect: east.GatewayID(), RecheckInterval: time.Hour,
		Now: func() time.Time { return time.Now().Add(-lag) },
	})
	// The counter, unlike lastErr, still shows the refusal after the load.
	testkit.Eventually(t, "refusal", func() bool { return testutil.ToFloat64(l.metrics.rejected) == 1 })
	testkit.Eventually(t, "load at NotBefore", func() bool { return l.Ready() == nil })
}
