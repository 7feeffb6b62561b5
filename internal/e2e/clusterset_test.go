package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/netns"
	"ferry.dev/ferry/internal/tooling/sandbox"
)

// One name for every cluster that exports echo: west's ServiceImport lists
// east and north, and connections to echo-clusterset spread over both.
func TestClustersetSpreadsAcrossClusters(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	var si mcsv1beta1.ServiceImport
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := west.API.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "echo"}, &si); err != nil {
			return false, nil
		}
		var clusters []string
		for _, c := range si.Status.Clusters {
			clusters = append(clusters, c.Cluster)
		}
		return slices.Equal(clusters, []string{"east", "north"}) && len(si.Spec.IPs) == 1, nil
	})
	if err != nil {
		t.Fatalf("ServiceImport echo in west never listed east and north with an IP: %+v", si)
	}
	set := contract.ClustersetName("echo")
	if err := waitReachable(ctx, set, 60*time.Second); err != nil {
		t.Fatalf("%v\nwest gateway:\n%s", err, west.Gateway.Tail(20))
	}
	served := serveFrom(ctx, t, set, 20)
	t.Logf("ServiceImport echo: clusters %v, IP %v; 20 requests to %s served by %v", si.Status.Clusters, si.Spec.IPs, set, served)
	if served["east"] == 0 || served["north"] == 0 || served["east"]+served["north"] != 20 {
		t.Fatalf("%s should spread over east and north, got %v", set, served)
	}
}

// With no policy, a clusterset service splits new connections as one
// Service over every cluster's endpoints would: east serves split from 1
// pod and north from 3, so over 2,000 connections east takes 25% and north
// 75%, within 3 points (issue 12: the proportional default).
func TestClustersetSplitsByReadyEndpoints(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for _, c := range []struct {
		cluster *sandbox.Cluster
		pods    int
	}{{east, 1}, {north, 3}} {
		w, err := c.cluster.Echo(ctx, ns, "split", c.pods)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		if err := c.cluster.Export(ctx, ns, "split"); err != nil {
			t.Fatal(err)
		}
	}
	set := contract.ClustersetName("split")
	// Both clusters routed, with their counts: a first connection to each.
	waitServedBy(ctx, t, set, "east", "north")
	const n = 2000
	served := serveFrom(ctx, t, set, n)
	t.Logf("%d connections to %s: %v", n, set, served)
	if share := float64(served["east"]) / n; share < 0.22 || share > 0.28 || served["east"]+served["north"] != n {
		t.Fatalf("east served %.1f%% of %s, want 25%% ± 3 (1 pod against north's 3): %v", 100*share, set, served)
	}
}

// Local participation (issue 12): west and east both export both. West's
// ServiceImport lists east and west, its clusterset service serves from
// both in proportion to their pods, and west's share never touches a
// tunnel: east's gateway serves exactly east's share.
func TestClustersetIncludesTheLocalCluster(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for _, c := range []*sandbox.Cluster{east, west} {
		w, err := c.Echo(ctx, ns, "both", 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		if err := c.Export(ctx, ns, "both"); err != nil {
			t.Fatal(err)
		}
	}
	var si mcsv1beta1.ServiceImport
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := west.API.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "both"}, &si); err != nil {
			return false, nil
		}
		var clusters []string
		for _, c := range si.Status.Clusters {
			clusters = append(clusters, c.Cluster)
		}
		return slices.Equal(clusters, []string{"east", "west"}), nil
	})
	if err != nil {
		t.Fatalf("west's ServiceImport both never listed east and west: %+v\nwest controller:\n%s", si.Status, west.Controller.Tail(20))
	}
	set := contract.ClustersetName("both")
	waitServedBy(ctx, t, set, "east", "west")
	tunnelled := func() float64 {
		text, err := east.GatewayMetrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v, err := sandbox.MetricSum(text, "ferry_gateway_ingress_streams_opened_total", map[string]string{"cluster": "west", "export": ns + "/both"})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := tunnelled()
	const n = 400
	served := serveFrom(ctx, t, set, n)
	through := tunnelled() - before
	t.Logf("%d connections to %s: %v; east's gateway served %v of them", n, set, served, through)
	if d := served["west"] - n/2; d < -12 || d > 12 || served["west"]+served["east"] != n {
		t.Errorf("west served %d of %d, want about half (one pod each): %v", served["west"], n, served)
	}
	if int(through) != served["east"] {
		t.Errorf("east's gateway served %v streams for west, want exactly east's %d: west's own share went through a tunnel", through, served["east"])
	}
}

// serveFrom sends n requests from a west pod to svc, one connection each,
// and counts them by the cluster that answered.
func serveFrom(ctx context.Context, t *testing.T, svc string, n int) map[string]int {
	t.Helper()
	served := map[string]int{}
	for i := range n {
		reply, err := west.Request(ctx, ns, svc, 80, "which cluster")
		if err != nil {
			t.Fatalf("request %d to %s: %v", i, svc, err)
		}
		served[strings.SplitN(reply, "/", 2)[0]]++
	}
	return served
}

// waitServedBy waits until a handful of requests from west to svc reach
// every one of clusters.
func waitServedBy(ctx context.Context, t *testing.T, svc string, clusters ...string) map[string]int {
	t.Helper()
	// Every request answered, by the cluster that answered: what the
	// wait itself sent (a test that counts the gateways' connections
	// adds it).
	sent := map[string]int{}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		seen := map[string]bool{}
		for range 8 {
			reply, err := west.Request(ctx, ns, svc, 80, "which cluster")
			if err != nil {
				return false, nil
			}
			c := strings.SplitN(reply, "/", 2)[0]
			seen[c] = true
			sent[c]++
		}
		for _, c := range clusters {
			if !seen[c] {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s never served from all of %v\nwest gateway:\n%s", svc, clusters, west.Gateway.Tail(20))
	}
	return sent
}

// Services by name (issue 13): a west pod resolves through west's CoreDNS,
// whose kubernetes plugin serves clusterset.local from Ferry's ServiceImports:
// echo.demo.svc.clusterset.local reaches echo in east and north, and the
// mirror's own name echo-east.demo.svc.cluster.local reaches east alone.
func TestServicesReachableByName(t *testing.T) {
	netns.RequireRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	set := "echo." + ns + ".svc.clusterset.local"
	seen := map[string]int{}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		reply, err := west.RequestName(ctx, set, 80, "by name")
		if err != nil {
			t.Logf("%s: %v", set, err)
			return false, nil
		}
		seen[strings.SplitN(reply, "/", 2)[0]]++
		return seen["east"] > 0 && seen["north"] > 0, nil
	})
	if err != nil {
		t.Fatalf("%s never reached both east and north: %v", set, seen)
	}
	mirror := "echo-east." + ns + ".svc.cluster.local"
	for i := range 10 {
		reply, err := west.RequestName(ctx, mirror, 80, "by name")
		if err != nil || !strings.HasPrefix(reply, "east/") {
			t.Fatalf("request %d to %s: %q, %v", i, mirror, reply, err)
		}
	}
	t.Logf("%s reached %v; %s reached east 10 times", set, seen, mirror)
}
