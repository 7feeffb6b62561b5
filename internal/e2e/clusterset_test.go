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
	served := map[string]int{}
	for i := range 20 {
		reply, err := west.Request(ctx, ns, set, 80, "which cluster")
		if err != nil {
			t.Fatalf("request %d to %s: %v", i, set, err)
		}
		served[strings.SplitN(reply, "/", 2)[0]]++
	}
	t.Logf("ServiceImport echo: clusters %v, IP %v; 20 requests to %s served by %v", si.Status.Clusters, si.Spec.IPs, set, served)
	if served["east"] == 0 || served["north"] == 0 || served["east"]+served["north"] != 20 {
		t.Fatalf("%s should spread over east and north, got %v", set, served)
	}
}
