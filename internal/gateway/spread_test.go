package gateway

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
)

// remoteGateway is a second exporting cluster's ingress, next to the pair's
// east, in the same mesh.
type remoteGateway struct {
	in   *Ingress
	addr string
}

// newRemoteGateway starts cluster's ingress exporting default/<svc>:80,
// backed by addrs. Its Shutdown is the test's "gateway down".
func newRemoteGateway(t *testing.T, p *pair, cluster, svc string, addrs ...string) *remoteGateway {
	t.Helper()
	set, endpoints := exports.NewPublisher(), NewEndpointTable()
	set.Publish(exports.Of(exports.TCP("default", svc, 80)), nil)
	endpoints.Set("default", svc, 80, addrs)
	return startRemoteGateway(t, p, cluster, set, endpoints)
}

// startRemoteGateway starts cluster's ingress over set and endpoints; edits
// change its options (a backend dialer, limits) before it starts.
func startRemoteGateway(t *testing.T, p *pair, cluster string, set *exports.Publisher, endpoints *EndpointTable, edits ...func(*IngressOptions)) *remoteGateway {
	t.Helper()
	c := p.mesh.Cluster(t, cluster)
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	o := IngressOptions{
		Local: c.GatewayID(), TLS: c.Gateway, Authorizer: NewExportAuthorizer(set), Endpoints: endpoints,
		Limits: testLimits(), Metrics: m, Logger: testkit.Logger(),
	}
	for _, edit := range edits {
		edit(&o)
	}
	in, err := NewIngress(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = in.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = in.Shutdown(ctx)
	})
	return &remoteGateway{in: in, addr: ln.Addr().String()}
}

// spreadRoute wires west's egress to east and north, each exporting
// default/web from a backend that answers with its cluster's name, and opens
// one port routed to both, in that order.
func spreadRoute(t *testing.T) (*pair, *remoteGateway, string) {
	t.Helper()
	p := newPair(t, pairOpts{})
	p.export("web", nil, newBackend(t, whoami("east")).addr())
	north := newRemoteGateway(t, p, "north", "web", newBackend(t, whoami("north")).addr())
	return p, north, routeToBoth(t, p, north, 0, 0)
}

// routeToBoth opens one port of west's egress routed to default/web in east
// and then north, with the given weights, and waits for both sessions.
func routeToBoth(t *testing.T, p *pair, north *remoteGateway, eastWeight, northWeight uint32) string {
	t.Helper()
	p.eg.SetRemotes(map[string]tunnel.Remote{
		"east":  {Addresses: []string{p.inAddr}, Identity: p.east.GatewayID()},
		"north": {Addresses: []string{north.addr}, Identity: identityOf(p, "north")},
	})
	web := tunnel.Target{Namespace: "default", Service: "web", Port: 80}
	port := freePort(t)
	if err := p.eg.SetRoutes([]Route{{Port: port, Namespace: "default", Destinations: []Destination{
		{Cluster: "east", Target: web, Weight: eastWeight}, {Cluster: "north", Target: web, Weight: northWeight},
	}}}); err != nil {
		t.Fatal(err)
	}
	// The pools dial in the background; until both are up, the health-aware
	// order would (rightly) prefer the live one.
	testkit.EventuallyWithin(t, 5*time.Second, "sessions to east and north", func() bool {
		return p.eg.RemoteLive("east") && p.eg.RemoteLive("north")
	})
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// A gateway that has just started does not know its exports yet. It
// answers "unavailable", never "denied", so a clusterset connection goes to
// another cluster instead of failing: the restart window of requirement III.
func TestMultiDestinationRouteFailsOverWhileAGatewayHasNotSynced(t *testing.T) {
	p := newPair(t, pairOpts{})
	p.export("web", nil, newBackend(t, whoami("east")).addr())
	// north's export set never syncs.
	north := startRemoteGateway(t, p, "north", exports.NewPublisher(), NewEndpointTable())
	addr := routeToBoth(t, p, north, 0, 0)
	for i := range 20 {
		if got := hit(t, addr); got != "east" {
			t.Fatalf("connection %d got %q, want east\n%s", i, got, p.failureCounters())
		}
	}
}

// With every destination up, successive connections take turns: the load
// of a clusterset port is spread over its clusters, not sent to the first.
func TestMultiDestinationRouteSpreadsConnections(t *testing.T) {
	_, _, addr := spreadRoute(t)
	const n = 20
	seen := map[string]int{}
	for range n {
		seen[hit(t, addr)]++
	}
	if seen["east"] != n/2 || seen["north"] != n/2 {
		t.Fatalf("distribution %v, want %d each (round-robin)", seen, n/2)
	}
}

// Weights split new connections in proportion, through real tunnels; a
// zero weight takes none.
func TestMultiDestinationRouteFollowsWeights(t *testing.T) {
	for _, tc := range []struct {
		east, north uint32
		wantEast    int // of 200
	}{{1, 3, 50}, {90, 10, 180}, {0, 100, 0}} {
		p := newPair(t, pairOpts{})
		p.export("web", nil, newBackend(t, whoami("east")).addr())
		north := newRemoteGateway(t, p, "north", "web", newBackend(t, whoami("north")).addr())
		addr := routeToBoth(t, p, north, tc.east, tc.north)
		seen := map[string]int{}
		for range 200 {
			seen[hit(t, addr)]++
		}
		// The picker is deterministic: within 2% of the weights.
		if d := seen["east"] - tc.wantEast; d < -4 || d > 4 || seen["east"]+seen["north"] != 200 {
			t.Errorf("weights %d/%d: distribution %v, want east ≈ %d of 200", tc.east, tc.north, seen, tc.wantEast)
		}
	}
}

// With one cluster's gateway gone, every connection still succeeds through
// the other, including those whose turn starts at the dead one.
func TestMultiDestinationRouteFailsOverWhenAGatewayIsDown(t *testing.T) {
	p, north, addr := spreadRoute(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := north.in.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 20
	seen := map[string]int{}
	for i := range n {
		got := hit(t, addr)
		if got != "east" {
			t.Fatalf("connection %d got %q, want east\n%s", i, got, p.failureCounters())
		}
		seen[got]++
	}
	if seen["east"] != n {
		t.Fatalf("distribution %v", seen)
	}
}
