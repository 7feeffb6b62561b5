package e2e

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/tooling/netns"
)

// Requirement I: hierarchical networks. West's workloads cannot reach east's
// workloads or east's API server, yet reach east's export through the two
// gateways; the gateway address is all that crosses.
func TestRequirementI_HierarchicalNetworks(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	eastPod := net.JoinHostPort(east.Site.PodAddr(21), "8080") // east's first echo pod
	eastAPI := strings.TrimPrefix(east.API.Server, "https://")
	dialFromWest := func(addr string) error {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		c, err := west.Site.NS.DialContext(dctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	// Inside east both answer, so a failure from west is the network's doing.
	for _, addr := range []string{eastPod, eastAPI} {
		c, err := east.Site.NS.DialContext(ctx, "tcp", addr)
		if err != nil {
			t.Fatalf("%s does not even answer inside east: %v", addr, err)
		}
		c.Close()
	}
	for what, addr := range map[string]string{"east's echo pod": eastPod, "east's API server": eastAPI} {
		err := dialFromWest(addr)
		if !errors.Is(err, syscall.ENETUNREACH) {
			t.Errorf("a west pod dialing %s (%s): want network unreachable, got %v", what, addr, err)
		} else {
			t.Logf("west pod -> %s (%s): %v", what, addr, err)
		}
	}
	if err := dialFromWest(east.GatewayAddr()); err != nil {
		t.Fatalf("west cannot reach east's gateway on the WAN (%s): %v", east.GatewayAddr(), err)
	}

	reply, err := west.Request(ctx, ns, "echo-east", 80, "across the WAN")
	if err != nil {
		t.Fatalf("west pod -> echo-east: %v", err)
	}
	if !strings.HasPrefix(reply, "east/echo-") {
		t.Fatalf("reply %q did not come from east", reply)
	}
	t.Logf("west pod -> echo-east through both gateways: %q", reply)

	// The Link, the only thing west knows of east, holds a gateway address
	// and identity: no API server address, no credential.
	var link ferryv1.Link
	if err := west.API.Client.Get(ctx, types.NamespacedName{Namespace: "ferry-system", Name: "east"}, &link); err != nil {
		t.Fatal(err)
	}
	if got := link.Spec.GatewayAddresses; len(got) != 1 || got[0] != east.GatewayAddr() {
		t.Fatalf("Link east addresses %v, want only east's gateway %s", got, east.GatewayAddr())
	}
	if apiHost, _, _ := net.SplitHostPort(eastAPI); strings.Contains(link.Spec.GatewayAddresses[0], apiHost) {
		t.Fatalf("Link east names east's API server host: %v", link.Spec)
	}
	t.Logf("Link east: addresses %v, identity %s", link.Spec.GatewayAddresses, link.Spec.GatewayIdentity)
}
