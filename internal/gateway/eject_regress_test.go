package gateway

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
)

// Regression tests from a review of the ejection rules (issue 12).

// slowDialer delays the dial of the addresses in slow.
type slowDialer struct {
	mu   sync.Mutex
	slow map[string]time.Duration
	d    net.Dialer
}

func (s *slowDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	s.mu.Lock()
	delay := s.slow[addr]
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.d.DialContext(ctx, network, addr)
}

// withDialer gives a remote ingress a backend dialer, and the production
// backend timeouts, so that only the slow dial is slow.
func withDialer(d Dialer) func(*IngressOptions) {
	return func(o *IngressOptions) {
		o.Dialer = d
		o.Limits.DialTimeout = 5 * time.Second
		o.Limits.OpenTimeout = 20 * time.Second
	}
}

// One namespace's slow backend at north (ingress answers only once the
// backend accepted) times its attempt out: that ejects the slow service at
// north, never north for the cluster's other services.
func TestSlowBackendEjectsOnlyItsService(t *testing.T) {
	lim := testLimits()
	lim.AttemptTimeout = 300 * time.Millisecond
	lim.OpenTimeout = 10 * time.Second
	lim.EjectionBase, lim.EjectionMax = 3*time.Second, 3*time.Second
	p := newPair(t, pairOpts{egLimits: lim})
	p.export("web", nil, newBackend(t, whoami("east")).addr())
	p.export("slow", nil, newBackend(t, whoami("east-slow")).addr())

	northWeb := newBackend(t, whoami("north")).addr()
	northSlow := newBackend(t, whoami("north-slow")).addr()
	set, eps := exports.NewPublisher(), NewEndpointTable()
	set.Publish(exports.Of(exports.TCP("default", "web", 80), exports.TCP("default", "slow", 80)), nil)
	eps.Set("default", "web", 80, []string{northWeb})
	eps.Set("default", "slow", 80, []string{northSlow})
	// tenant "slow"'s backend at north takes 1 s to connect (a black-holed
	// endpoint would take DialTimeout = 5 s).
	sd := &slowDialer{slow: map[string]time.Duration{northSlow: time.Second}}
	north := startRemoteGateway(t, p, "north", set, eps, withDialer(sd))

	p.eg.SetRemotes(map[string]tunnel.Remote{
		"east":  {Addresses: []string{p.inAddr}, Identity: p.east.GatewayID()},
		"north": {Addresses: []string{north.addr}, Identity: identityOf(p, "north")},
	})
	web := tunnel.Target{Namespace: "default", Service: "web", Port: 80}
	slow := tunnel.Target{Namespace: "default", Service: "slow", Port: 80}
	webPort, slowPort := freePort(t), freePort(t)
	if err := p.eg.SetRoutes([]Route{
		{Port: webPort, Namespace: "default", Clusterset: true, Destinations: []Destination{{Cluster: "east", Target: web, Weight: 1}, {Cluster: "north", Target: web, Weight: 1}}},
		// north first, so the first connection tries north.
		{Port: slowPort, Namespace: "default", Clusterset: true, Destinations: []Destination{{Cluster: "north", Target: slow, Weight: 1}, {Cluster: "east", Target: slow, Weight: 1}}},
	}); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyWithin(t, 5*time.Second, "sessions", func() bool { return p.eg.RemoteLive("east") && p.eg.RemoteLive("north") })
	webAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(webPort))
	slowAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(slowPort))

	before := map[string]int{}
	for range 10 {
		before[hit(t, webAddr)]++
	}
	t.Logf("web before: %v", before)
	got := hit(t, slowAddr)
	t.Logf("slow: served by %q", got)
	after := map[string]int{}
	for range 10 {
		after[hit(t, webAddr)]++
	}
	t.Logf("web after one connection to the slow service: %v; north cluster ejections %v", after,
		testutil.ToFloat64(p.egMetrics.Ejections.WithLabelValues("north", "cluster")))
	if after["north"] == 0 || testutil.ToFloat64(p.egMetrics.Ejections.WithLabelValues("north", "cluster")) != 0 {
		t.Errorf("one slow backend of service slow at north ejected north for service web too: web after %v", after)
	}
	if testutil.ToFloat64(p.egMetrics.Ejections.WithLabelValues("north", "service")) != 1 {
		t.Errorf("the slow service was not ejected at north\n%s", p.failureCounters())
	}
}

// The only destination that can serve is slower than AttemptTimeout, and
// the other has no session: the attempt is not bounded (there is nothing
// better to try), so every connection is served.
func TestSlowOnlyLiveDestinationIsNotCut(t *testing.T) {
	lim := testLimits()
	lim.AttemptTimeout = 300 * time.Millisecond
	lim.OpenTimeout = 10 * time.Second
	p := newPair(t, pairOpts{egLimits: lim})
	p.export("web", nil, newBackend(t, whoami("east")).addr())

	northWeb := newBackend(t, whoami("north")).addr()
	set, eps := exports.NewPublisher(), NewEndpointTable()
	set.Publish(exports.Of(exports.TCP("default", "web", 80)), nil)
	eps.Set("default", "web", 80, []string{northWeb})
	sd := &slowDialer{slow: map[string]time.Duration{northWeb: 600 * time.Millisecond}}
	north := startRemoteGateway(t, p, "north", set, eps, withDialer(sd))

	p.eg.SetRemotes(map[string]tunnel.Remote{
		"east":  {Addresses: []string{deadAddr(t)}, Identity: p.east.GatewayID()}, // east is down
		"north": {Addresses: []string{north.addr}, Identity: identityOf(p, "north")},
	})
	web := tunnel.Target{Namespace: "default", Service: "web", Port: 80}
	port := freePort(t)
	if err := p.eg.SetRoutes([]Route{{Port: port, Namespace: "default", Clusterset: true, Destinations: []Destination{
		{Cluster: "east", Target: web, Weight: 1}, {Cluster: "north", Target: web, Weight: 1},
	}}}); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyWithin(t, 5*time.Second, "north session", func() bool { return p.eg.RemoteLive("north") })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ok, failed := 0, 0
	for range 6 {
		if got := hit(t, addr); got == "north" {
			ok++
		} else {
			failed++
		}
	}
	t.Logf("north (600 ms backend connect) the only live destination: %d served, %d failed", ok, failed)
	if failed > 0 {
		t.Errorf("%d connections failed although north serves them within OpenTimeout", failed)
	}
}

// A connection whose own service is still ejected at a cluster does not use
// up that cluster's half-open trial: another service there is admitted.
func TestTrialIsClaimedOnlyByAnAdmittedDestination(t *testing.T) {
	now := time.Unix(1000, 0)
	j := newEjector(time.Second, 8*time.Second, time.Second, 500*time.Millisecond, func() time.Time { return now }, nil)
	aD := Destination{Cluster: "north", Target: tunnel.Target{Namespace: "a", Service: "bad", Port: 80}}
	bD := Destination{Cluster: "north", Target: tunnel.Target{Namespace: "b", Service: "good", Port: 80}}
	a, b := j.health(aD), j.health(bD)
	j.failed(a, aD, false)                 // a/bad: 0.8-1.2 s
	now = now.Add(1300 * time.Millisecond) // over
	j.failed(a, aD, false)                 // a/bad again: 1.6-2.4 s
	j.failed(a, aD, true)                  // and north as a whole: 0.8-1.2 s
	now = now.Add(1300 * time.Millisecond) // north half-open, a/bad still ejected
	if j.admit(a, false, now.UnixNano()) {
		t.Fatal("a/bad admitted while its service is ejected")
	}
	if !j.admit(b, false, now.UnixNano()) {
		t.Fatal("b/good not admitted: a/bad's connection used up north's trial")
	}
}

// Quiet is per service: one service's attempts waiting on a slow backend do
// not make the cluster quiet for another service.
func TestQuietIsPerService(t *testing.T) {
	now := time.Unix(1000, 0)
	j := newEjector(time.Second, 8*time.Second, time.Second, 500*time.Millisecond, func() time.Time { return now }, nil)
	slow := j.health(Destination{Cluster: "north", Target: tunnel.Target{Namespace: "tenant-a", Service: "slow", Port: 80}})
	other := j.health(Destination{Cluster: "north", Target: tunnel.Target{Namespace: "tenant-b", Service: "web", Port: 80}})
	done := j.waiting(slow)
	defer done(false)
	now = now.Add(600 * time.Millisecond)
	if j.admit(slow, false, now.UnixNano()) {
		t.Error("the slow service is not quiet after QuietAfter")
	}
	if !j.admit(other, false, now.UnixNano()) {
		t.Error("another service at the same cluster was taken for quiet")
	}
}

// A success ends an ejection under way: a destination proven to serve (in a
// connection's second pass) is not kept last for the rest of its ejection.
func TestSuccessEndsTheEjection(t *testing.T) {
	now := time.Unix(1000, 0)
	j := newEjector(time.Second, 30*time.Second, time.Second, 500*time.Millisecond, func() time.Time { return now }, nil)
	d := Destination{Cluster: "north", Target: tunnel.Target{Namespace: "a", Service: "web", Port: 80}}
	h := j.health(d)
	for range 6 {
		dur, _ := j.failed(h, d, true)
		if dur > 30*time.Second {
			t.Fatalf("ejected for %v, over EjectionMax", dur)
		}
		now = now.Add(dur)
	}
	j.failed(h, d, true)
	now = now.Add(time.Second)
	j.succeeded(h)
	if j.ejected(h, now.UnixNano()) || !j.admit(h, false, now.UnixNano()) {
		t.Fatal("still ejected after a success")
	}
}
