package clusterset_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
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

// A pass with more services to write than BatchKeys writes the first
// BatchKeys (Services, then their ServiceImports) and leaves the rest to
// the passes after it, so the first ServiceImports exist before the last
// clusterset Services. Unbounded, the one pass would create every Service
// before any ServiceImport.
func TestPassesWriteInBatches(t *testing.T) {
	west := shared.Get(t).Cluster("west")
	ctx := t.Context()
	ensureGateway(t, west)
	ns := west.TestNamespace(t, "batches")
	mk := &mirrorMaker{c: west, ns: ns, next: 39500}
	const n, batch = 9, 3
	for i := range n {
		mk.add(t, fmt.Sprintf("b%02d", i), "east", true, 80)
	}

	wc, err := client.NewWithWatch(west.RestConfig, client.Options{Scheme: west.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string // "Service/<name>", "ServiceImport/<name>", as created
	for kind, list := range map[string]client.ObjectList{"Service": &corev1.ServiceList{}, "ServiceImport": &mcsv1beta1.ServiceImportList{}} {
		w, err := wc.Watch(ctx, list, client.InNamespace(ns))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		go func() {
			for ev := range w.ResultChan() {
				o, ok := ev.Object.(client.Object)
				if !ok || ev.Type != watch.Added {
					continue
				}
				if _, mine := o.GetLabels()[contract.LabelClusterset]; !mine {
					continue
				}
				mu.Lock()
				order = append(order, kind+"/"+o.GetName())
				mu.Unlock()
			}
		}()
	}

	startClustersetWith(t, west, clusterset.Options{BatchKeys: batch, ConsistencyInterval: time.Hour})
	testkit.Eventually(t, "every clusterset Service and ServiceImport", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 2*n
	})
	mu.Lock()
	defer mu.Unlock()
	firstImport := slices.IndexFunc(order, func(s string) bool { return strings.HasPrefix(s, "ServiceImport/") })
	lastService := -1
	for i, s := range order {
		if strings.HasPrefix(s, "Service/") {
			lastService = i
		}
	}
	if firstImport > lastService || firstImport > 2*batch {
		t.Errorf("creations in order %v: the first ServiceImport (#%d) must come within the first batch of %d services, before the last Service (#%d)",
			order, firstImport, batch, lastService)
	}
}
