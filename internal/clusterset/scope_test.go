package clusterset_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/clusterset"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// passCount counts the reconciler's passes of a mode ("full", "scoped").
func passCount(t *testing.T, reg *prometheus.Registry, mode string) uint64 {
	t.Helper()
	return testkit.HistogramCount(t, reg, "ferry_clusterset_pass_duration_seconds", "mode", mode)
}

// TestClustersetChangesAreScoped: once the first pass has run, a change to
// one service's mirrors recomputes that service only (no full pass), and a
// full pass afterwards finds nothing to write: the scoped passes left what
// a full one wants.
func TestClustersetChangesAreScoped(t *testing.T) {
	west := shared.Get(t).Cluster("west")
	ctx := t.Context()
	ensureGateway(t, west)
	ns := west.TestNamespace(t, "scoped")
	reg := prometheus.NewRegistry()
	writes := startClustersetWith(t, west, clusterset.Options{Registry: reg, ConsistencyInterval: time.Hour})

	mk := &mirrorMaker{c: west, ns: ns, next: 39000} // below the egress range, which other tests' importers allocate from
	const n = 12
	for i := range n {
		mk.add(t, fmt.Sprintf("s%02d", i), "east", true, 80)
	}
	clustersOf := func(name string) []string {
		var si mcsv1beta1.ServiceImport
		err := west.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &si)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range si.Status.Clusters {
			out = append(out, c.Cluster)
		}
		return out
	}
	testkit.Eventually(t, "every ServiceImport", func() bool {
		for i := range n {
			if clustersOf(fmt.Sprintf("s%02d", i)) == nil {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond)
	full, scoped := passCount(t, reg, "full"), passCount(t, reg, "scoped")

	// s03 gains a cluster; s07's only mirror goes.
	mk.add(t, "s03", "north", true, 80)
	var gone discoveryv1.EndpointSlice
	gone.Namespace, gone.Name = ns, contract.MirrorName("s07", "east")
	if err := west.Client.Delete(ctx, &gone); err != nil {
		t.Fatal(err)
	}
	goneSvc := &corev1.Service{}
	goneSvc.Namespace, goneSvc.Name = ns, gone.Name
	if err := west.Client.Delete(ctx, goneSvc); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "s03 from both clusters, s07 gone", func() bool {
		return slices.Equal(clustersOf("s03"), []string{"east", "north"}) && clustersOf("s07") == nil
	})
	time.Sleep(300 * time.Millisecond)
	if got := passCount(t, reg, "full"); got != full {
		t.Errorf("full passes went from %d to %d; changes to two services must recompute only them", full, got)
	}
	if passCount(t, reg, "scoped") == scoped {
		t.Error("no scoped pass counted")
	}

	// A gateway event asks for a full pass: it must find nothing to do.
	before := writes.Snapshot()
	var gw discoveryv1.EndpointSliceList
	if err := west.Client.List(ctx, &gw, client.InNamespace(contract.SystemNamespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: contract.GatewayName}); err != nil || len(gw.Items) == 0 {
		t.Fatalf("gateway slices: %v (%d)", err, len(gw.Items))
	}
	s := gw.Items[0]
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels["touched"] = time.Now().Format("150405.000000")
	if err := west.Client.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "a full pass", func() bool { return passCount(t, reg, "full") > full })
	time.Sleep(300 * time.Millisecond)
	if got := writes.Since(before); len(got) != 0 {
		t.Errorf("the full pass after scoped ones wrote %v; want nothing", got)
	}
}
