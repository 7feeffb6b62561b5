package importer_test

import (
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// TestExportLifecycle: an export appears as a mirror with the contract's
// ports, labels and endpoints; port and label changes propagate; an
// unexport removes the mirror.
func TestExportLifecycle(t *testing.T) {
	ctx := ctxT(t)
	if err := west.EnsureNamespace(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	cart := export("shop", "cart", 80)
	cart.Labels = map[string]string{"app": "cart"}
	cart.Annotations = map[string]string{"team": "payments"}
	feed := newFakeFeed(cart)
	startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{})
	createLink(t, newLink("lifecycle", "east-gw:4143"))
	t.Cleanup(func() { deleteLink(t, "lifecycle") })

	var svc *corev1.Service
	testkit.Eventually(t, "mirror shop/cart-east", func() bool { svc = getService(t, "shop", "cart-east"); return svc != nil })
	wantLabels := map[string]string{
		"app": "cart", contract.LabelLink: "lifecycle", contract.LabelSourceCluster: "east", mcsv1beta1.LabelSourceCluster: "east",
	}
	if !maps.Equal(svc.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", svc.Labels, wantLabels)
	}
	if svc.Annotations[contract.AnnotationRemoteService] != "cart" || svc.Annotations["team"] != "payments" {
		t.Errorf("annotations %v", svc.Annotations)
	}
	if len(svc.Spec.Selector) != 0 || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 {
		t.Fatalf("spec %+v", svc.Spec)
	}
	egress := svc.Spec.Ports[0].TargetPort.IntVal
	if r := contract.DefaultEgressRange(); !r.Contains(egress) {
		t.Errorf("targetPort %v: want an egress port in %s", svc.Spec.Ports[0].TargetPort, r)
	}
	var slice *discoveryv1.EndpointSlice
	testkit.Eventually(t, "mirror slice", func() bool { slice = getSlice(t, "shop", "cart-east"); return slice != nil })
	if slice.Labels[discoveryv1.LabelServiceName] != "cart-east" || slice.Labels[discoveryv1.LabelManagedBy] != contract.ManagedBy ||
		slice.Labels[mcsv1beta1.LabelServiceName] != "" || slice.Labels[mcsv1beta1.LabelSourceCluster] != "east" ||
		slice.Labels[contract.LabelLink] != "lifecycle" {
		t.Errorf("slice labels %v", slice.Labels)
	}
	var addrs []string
	for _, ep := range slice.Endpoints {
		addrs = append(addrs, ep.Addresses...)
	}
	if strings.Join(addrs, ",") != strings.Join(gatewayIPs, ",") || !allReady(slice, true) {
		t.Errorf("endpoints %v ready=%v: want the gateway pods, ready", addrs, allReady(slice, true))
	}
	if len(slice.Ports) != 1 || ptr.Deref(slice.Ports[0].Port, 0) != egress || ptr.Deref(slice.Ports[0].Name, "") != "http" {
		t.Errorf("slice ports %+v: want http=%d", slice.Ports, egress)
	}
	testkit.Eventually(t, "status synced", func() bool {
		l := getLink(t, "lifecycle")
		return condition(l, ferryv1.LinkSynced).Status == metav1.ConditionTrue &&
			condition(l, ferryv1.LinkConnected).Status == metav1.ConditionTrue &&
			condition(l, ferryv1.LinkGatewayHealthy).Status == metav1.ConditionTrue &&
			l.Status.ImportedServices == 1 && l.Status.LastSyncVersion == int64(feed.Version()) && l.Status.LastSyncTime != nil
	})

	// Port and label changes propagate; the egress port follows the new
	// exported port.
	changed := export("shop", "cart", 8080)
	changed.Labels = map[string]string{"app": "cart", "tier": "front"}
	feed.Set(changed)
	testkit.Eventually(t, "port and label change", func() bool {
		s := getService(t, "shop", "cart-east")
		return s != nil && s.Spec.Ports[0].Port == 8080 && s.Labels["tier"] == "front" && s.Annotations["team"] == ""
	})
	testkit.Eventually(t, "slice follows", func() bool {
		s, sl := getService(t, "shop", "cart-east"), getSlice(t, "shop", "cart-east")
		return sl != nil && ptr.Deref(sl.Ports[0].Port, 0) == s.Spec.Ports[0].TargetPort.IntVal
	})

	// An export whose endpoints all go away stays mirrored, not ready.
	none := changed
	none.ReadyEndpoints = 0
	feed.Set(none)
	testkit.Eventually(t, "not ready without remote endpoints", func() bool { return allReady(getSlice(t, "shop", "cart-east"), false) })

	feed.Delete(exports.Key{Namespace: "shop", Name: "cart"})
	testkit.Eventually(t, "unexport removes the mirror", func() bool {
		return getService(t, "shop", "cart-east") == nil && getSlice(t, "shop", "cart-east") == nil
	})
	testkit.Eventually(t, "status counts 0", func() bool { return getLink(t, "lifecycle").Status.ImportedServices == 0 })
}
