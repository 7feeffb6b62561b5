package gateway

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"ferry.dev/ferry/internal/tooling/testkit"
	"ferry.dev/ferry/internal/tunnel"
)

// The importing cluster's own export joins its clusterset route: its share
// goes straight to its own endpoint, never through a tunnel (east's ingress
// sees only east's share), the split follows the weights, and when the
// local endpoints go, every connection goes to east without a failure.
func TestLocalDestinationSkipsTheTunnel(t *testing.T) {
	local := NewEndpointTable()
	p := newPair(t, pairOpts{localEndpoints: local})
	p.export("web", nil, newBackend(t, whoami("east")).addr())
	local.Set("default", "web", 80, []string{newBackend(t, whoami("west")).addr()})
	web := tunnel.Target{Namespace: "default", Service: "web", Port: 80}
	port := freePort(t)
	if err := p.eg.SetRoutes([]Route{{Port: port, Namespace: "default", Destinations: []Destination{
		{Cluster: "west", Local: true, Target: web, Weight: 1}, {Cluster: "east", Target: web, Weight: 3},
	}}}); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyWithin(t, 5*time.Second, "session to east", func() bool { return p.eg.RemoteLive("east") })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	seen := map[string]int{}
	for range 200 {
		seen[hit(t, addr)]++
	}
	if d := seen["west"] - 50; d < -4 || d > 4 || seen["west"]+seen["east"] != 200 {
		t.Errorf("distribution %v, want west ≈ 50 of 200 (weights 1:3)", seen)
	}
	if tunnelled := testutil.ToFloat64(p.inMetrics.IngressOpened.WithLabelValues("west", "default/web")); int(tunnelled) != seen["east"] {
		t.Errorf("east's ingress served %v streams, want exactly east's %d: a local connection went through the tunnel", tunnelled, seen["east"])
	}

	local.Set("default", "web", 80, nil)
	for i := range 20 {
		if got := hit(t, addr); got != "east" {
			t.Fatalf("connection %d with no local endpoint got %q, want east\n%s", i, got, p.failureCounters())
		}
	}
}

// A route with a local destination needs LocalEndpoints to reach it.
func TestLocalDestinationNeedsLocalEndpoints(t *testing.T) {
	p := newPair(t, pairOpts{})
	web := tunnel.Target{Namespace: "default", Service: "web", Port: 80}
	err := p.eg.SetRoutes([]Route{{Port: freePort(t), Namespace: "default", Destinations: []Destination{
		{Cluster: "west", Local: true, Target: web}, {Cluster: "east", Target: web},
	}}})
	if err == nil {
		t.Fatal("a local destination was accepted without LocalEndpoints")
	}
}
