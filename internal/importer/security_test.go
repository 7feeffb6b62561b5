package importer_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/gatewayd"
	"ferry.dev/ferry/internal/tooling/testkit"
)

// TestForgedMirrorHoldsAndRoutesNothing is the attack of issue 11, finding
// 1, against a real API server: a tenant creates, in its own namespace, a
// Service with the labels of a real Link's mirror, a finalizer, and
// targetPorts over the start of the egress range. The controller deletes
// it, and the finalizer keeps it Terminating. It must hold nothing (no
// claim names it, and later mirrors are not pushed off its ports) and route
// nothing: the gateway's routes, derived from the live objects and the
// claims as the gateway derives them, send the port of a mirror created
// afterwards in another namespace to that mirror's target, never to the
// tenant's.
func TestForgedMirrorHoldsAndRoutesNothing(t *testing.T) {
	ctx := ctxT(t)
	for _, ns := range []string{"tenant", "payments"} {
		if err := west.EnsureNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	feed := newFakeFeed()
	startImporter(t, map[string]*fakeFeed{"east-gw:4143": feed}, &fakeProber{})
	link := newLink("hijack", "east-gw:4143")
	createLink(t, link)
	t.Cleanup(func() { deleteLink(t, "hijack") })

	forged := &corev1.Service{ObjectMeta: metav1.ObjectMeta{
		Namespace: "tenant", Name: "bait-east",
		Labels:      map[string]string{contract.LabelLink: "hijack", contract.LabelSourceCluster: "east"},
		Annotations: map[string]string{contract.AnnotationRemoteService: "bait"},
		Finalizers:  []string{"tenant.example/hold"},
	}}
	egress := contract.DefaultEgressRange()
	for i := range int32(64) {
		forged.Spec.Ports = append(forged.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: 10000 + i, TargetPort: intstr.FromInt32(egress.Min + i)})
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
	p := api.Spec.Ports[0].TargetPort.IntVal
	snap, err := claims.Read(ctx, west.Client, contract.SystemNamespace)
	if err != nil {
		t.Fatal(err)
	}
	want := claims.Claim{Owner: claims.LinkOwner("hijack"), Namespace: "payments", Service: "api-east", Port: 443}
	if !snap.Table.Holds(p, want) {
		t.Fatalf("egress port %d of payments/api-east is claimed by %+v, want %+v", p, snap.Table[p], want)
	}
	for port, c := range snap.Table {
		if c.Namespace == "tenant" {
			t.Errorf("the forged mirror holds port %d: %+v", port, c)
		}
	}

	// Route as the gateway does, over every Service that looks like a
	// mirror (the forged one included) and the claims.
	var svcs corev1.ServiceList
	if err := west.Client.List(ctx, &svcs, client.HasLabels{contract.LabelLink}); err != nil {
		t.Fatal(err)
	}
	var ptrs []*corev1.Service
	for i := range svcs.Items {
		ptrs = append(ptrs, &svcs.Items[i])
	}
	routes, _ := gatewayd.Routes(ptrs, []*ferryv1.Link{link}, snap.Table, gatewayd.LocalExports{}, egress, contract.DefaultClustersetRange())
	for _, r := range routes {
		for _, d := range r.Destinations {
			if d.Target.Namespace == "tenant" {
				t.Errorf("egress port %d routes to the tenant's %v", r.Port, d.Target)
			}
		}
	}
	if !slices.ContainsFunc(routes, func(r gateway.Route) bool {
		return r.Port == int(p) && len(r.Destinations) == 1 && r.Destinations[0].Target.Namespace == "payments" && r.Destinations[0].Target.Service == "api"
	}) {
		t.Errorf("egress port %d does not route to east payments/api: %+v", p, routes)
	}
}

// TestTenantFinalizerHoldsOnlyItsOwnPort: a tenant puts a finalizer on a
// real mirror in its namespace, then the export goes. The mirror stays
// Terminating; its egress port stays claimed (clients that still reach the
// old object must not land on a new holder), but the controller neither
// deletes it again on every pass nor lets it hold up the Link's deletion.
// Once the tenant lets go, the claim is released, with the Link long gone.
func TestTenantFinalizerHoldsOnlyItsOwnPort(t *testing.T) {
	ctx := ctxT(t)
	if err := west.EnsureNamespace(ctx, "hold"); err != nil {
		t.Fatal(err)
	}
	feed := newFakeFeed()
	h := startImporter(t, map[string]*fakeFeed{"held-gw:4143": feed}, &fakeProber{})
	createLink(t, newLink("held", "held-gw:4143"))
	feed.Set(export("hold", "db", 5432))
	var db *corev1.Service
	testkit.Eventually(t, "hold/db imported", func() bool {
		db = getService(t, "hold", "db-east")
		return db != nil
	})
	p := db.Spec.Ports[0].TargetPort.IntVal
	claimed := func() bool {
		snap, err := claims.Read(ctx, west.Client, contract.SystemNamespace)
		if err != nil {
			t.Fatal(err)
		}
		return snap.Table.Holds(p, claims.Claim{Owner: claims.LinkOwner("held"), Namespace: "hold", Service: "db-east", Port: 5432})
	}
	testkit.Eventually(t, "its port claimed", claimed)

	patch := client.MergeFrom(db.DeepCopy())
	db.Finalizers = []string{"tenant.example/hold"}
	if err := west.Client.Patch(ctx, db, patch); err != nil {
		t.Fatal(err)
	}
	feed.Delete(exports.Key{Namespace: "hold", Name: "db"})
	testkit.Eventually(t, "the mirror deleted, kept Terminating", func() bool {
		s := getService(t, "hold", "db-east")
		return s != nil && s.DeletionTimestamp != nil
	})
	// The unexport's own writes end with the Link's status saying so.
	testkit.Eventually(t, "the unexport in the Link's status", func() bool {
		return getLink(t, "held").Status.ImportedServices == 0
	})
	before := h.writes.Snapshot()
	// Nothing to wait for: this is the absence of writes while the Link is
	// retried (after 1 s and 2 s) for its pending claim.
	time.Sleep(3500 * time.Millisecond)
	if got := h.writes.Since(before); len(got) != 0 {
		t.Errorf("while the tenant holds the mirror, the importer wrote %v", got)
	}
	if !claimed() {
		t.Fatal("the port was released while its old holder still exists")
	}

	deleteLinkWithin(t, "held", 30*time.Second)
	if !claimed() {
		t.Fatal("the port was released with the Link, while its old holder still exists")
	}
	s := getService(t, "hold", "db-east")
	patch = client.MergeFrom(s.DeepCopy())
	s.Finalizers = nil
	if err := west.Client.Patch(ctx, s, patch); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the claim released once the mirror is gone", func() bool { return !claimed() })
}
