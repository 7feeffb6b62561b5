package importer_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// TestForgedMirrorCannotHoldLaterMirrorsPorts is the attack of issue 11,
// finding 1, against a real API server: a tenant creates, in its own
// namespace, a Service with the labels of a real Link's mirror, a
// finalizer, and targetPorts over the start of the egress range. The
// controller deletes it, and the finalizer keeps it Terminating. A mirror
// created afterwards, in another namespace, must not get one of the
// tenant's ports (the gateway would have tunnelled its clients to the
// tenant's target).
func TestForgedMirrorCannotHoldLaterMirrorsPorts(t *testing.T) {
	ctx := ctxT(t)
	for _, ns := range []string{"tenant", "payments"} {
		if err := west.EnsureNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	feed := newFakeFeed()
	startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{})
	createLink(t, newLink("hijack", "east-gw:4143"))
	t.Cleanup(func() { deleteLink(t, "hijack") })

	forged := &corev1.Service{ObjectMeta: metav1.ObjectMeta{
		Namespace: "tenant", Name: "bait-east",
		Labels:      map[string]string{contract.LabelLink: "hijack", contract.LabelSourceCluster: "east"},
		Annotations: map[string]string{contract.AnnotationRemoteService: "bait"},
		Finalizers:  []string{"tenant.example/hold"},
	}}
	held := map[int32]bool{}
	for i := range int32(64) {
		p := contract.DefaultEgressRange().Min + i
		held[p] = true
		forged.Spec.Ports = append(forged.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: 10000 + i, TargetPort: intstr.FromInt32(p)})
	}
	if err := west.Client.Create(ctx, forged); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Let it go, so that the namespace can be cleaned.
		s := getService(t, "tenant", "bait-east")
		if s != nil {
			patch := client.MergeFrom(s.DeepCopy())
			s.Finalizers = nil
			_ = west.Client.Patch(ctxT(t), s, patch)
		}
	})
	testkit.Eventually(t, "the forged mirror deleted, kept Terminating by its finalizer", func() bool {
		s := getService(t, "tenant", "bait-east")
		return s != nil && s.DeletionTimestamp != nil
	})

	feed.Set(export("payments", "api", 443))
	var api *corev1.Service
	testkit.Eventually(t, "payments/api imported", func() bool {
		api = getService(t, "payments", "api-east")
		return api != nil
	})
	if p := api.Spec.Ports[0].TargetPort.IntVal; held[p] {
		t.Fatalf("payments/api-east got egress port %d, which the forged tenant/bait-east holds", p)
	}
}
