package clusterset_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/api/crds"
	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/clusterset"
	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/importer"
	"ferry.dev/ferry/internal/tooling/testenv"
	"ferry.dev/ferry/internal/tooling/testkit"
)

var shared = testenv.Lazy{Options: testenv.Options{
	Clusters: []string{"west"}, CRDs: slices.Concat(testenv.MCSCRDs(), crds.All(), testenv.GatewayAPICRDs()),
	AddToScheme: []func(*runtime.Scheme) error{ferryv1.AddToScheme, gwv1.Install},
}}

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	shared.Main(m)
}

// commitClaims writes port claims as a controller would, reading again on a
// conflict (the reconciler writes the same record).
func commitClaims(t *testing.T, c client.Client, ch claims.Change) {
	t.Helper()
	testkit.Eventually(t, "port claims written", func() bool {
		snap, err := claims.Read(t.Context(), c, contract.SystemNamespace)
		if err != nil {
			t.Fatal(err)
		}
		err = claims.Commit(t.Context(), c, contract.SystemNamespace, snap, ch)
		if err != nil && !errors.Is(err, claims.ErrConflict) {
			t.Fatal(err)
		}
		return err == nil
	})
}

func TestReconcile(t *testing.T) {
	west := shared.Get(t).Cluster("west")
	ctx := t.Context()
	ensureGateway(t, west)
	ns := west.TestNamespace(t, "shop")

	writes := startClusterset(t, west)

	// Two mirrors of web, as the importer writes them (claims first);
	// east is not ready.
	mk := &mirrorMaker{c: west, ns: ns, next: 41000}
	mirrorOf := func(cluster string, ready bool, ports ...int32) { mk.add(t, "web", cluster, ready, ports...) }
	mirrorOf("east", false, 80)
	mirrorOf("north", true, 80, 443)
	// A tenant's copy of a mirror, with no claim: it must not join the
	// clusterset (issue 11, findings 1 and 9).
	mirrorOf("forged", true, 80)

	get := func(obj client.Object, name string) bool {
		err := west.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj)
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	clusters := func(si *mcsv1beta1.ServiceImport) []string {
		var out []string
		for _, c := range si.Status.Clusters {
			out = append(out, c.Cluster)
		}
		return out
	}
	var si mcsv1beta1.ServiceImport
	var svc corev1.Service
	var sl discoveryv1.EndpointSlice
	testkit.Eventually(t, "clusterset objects", func() bool {
		return get(&si, "web") && get(&svc, "web-clusterset") && get(&sl, "web-clusterset") &&
			len(si.Spec.IPs) == 1 && slices.Equal(clusters(&si), []string{"east", "north"})
	})
	if si.Spec.IPs[0] != svc.Spec.ClusterIP || si.Spec.Type != mcsv1beta1.ClusterSetIP || len(si.Spec.Ports) != 2 || si.Labels[contract.LabelClusterset] != "web" {
		t.Errorf("ServiceImport %+v", si)
	}
	if svc.Annotations[contract.AnnotationClusters] != "east,north" || len(svc.Spec.Ports) != 2 ||
		!inClustersetRange(svc.Spec.Ports[0].TargetPort.IntVal) || !inClustersetRange(svc.Spec.Ports[1].TargetPort.IntVal) ||
		svc.Spec.Ports[0].TargetPort.IntVal == svc.Spec.Ports[1].TargetPort.IntVal || svc.Spec.Selector != nil {
		t.Errorf("Service %+v", svc)
	}
	// Other tests of the package share the cluster and the range: the
	// ports are any two of it, and stay what they are.
	port80 := svc.Spec.Ports[0].TargetPort.IntVal
	if len(sl.Endpoints) != 2 || !*sl.Endpoints[0].Conditions.Ready || *sl.Ports[0].Port != port80 ||
		sl.Labels[discoveryv1.LabelServiceName] != "web-clusterset" || sl.Labels[discoveryv1.LabelManagedBy] != contract.ManagedBy {
		t.Errorf("EndpointSlice %+v", sl)
	}

	// Steady state: a forced pass (a touch of a mirror) writes nothing.
	time.Sleep(300 * time.Millisecond)
	before := writes.Snapshot()
	var m corev1.Service
	get(&m, "web-north")
	m.Labels["touched"] = "yes"
	if err := west.Client.Update(ctx, &m); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := writes.Since(before); len(got) != 0 {
		t.Fatalf("steady state wrote: %v", got)
	}

	// north goes: only east is listed, the slice is no longer ready, port
	// 443 is gone and 80 keeps its egress port.
	if err := west.Client.Delete(ctx, &m); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "north removed", func() bool {
		return get(&si, "web") && slices.Equal(clusters(&si), []string{"east"}) && get(&svc, "web-clusterset") &&
			svc.Annotations[contract.AnnotationClusters] == "east" && get(&sl, "web-clusterset") && !*sl.Endpoints[0].Conditions.Ready
	})
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.IntVal != port80 || len(si.Spec.Ports) != 1 {
		t.Errorf("after north: Service %+v, import %+v", svc.Spec, si.Spec)
	}

	// east goes too: everything is removed.
	get(&m, "web-east")
	if err := west.Client.Delete(ctx, &m); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "everything removed", func() bool {
		return !get(&si, "web") && !get(&svc, "web-clusterset") && !get(&sl, "web-clusterset")
	})

	// A foreign ServiceImport is never adopted.
	foreign := &mcsv1beta1.ServiceImport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: mcsv1beta1.ServiceImportSpec{Type: mcsv1beta1.ClusterSetIP, Ports: []mcsv1beta1.ServicePort{{Port: 1, Protocol: corev1.ProtocolTCP}}}}
	if err := west.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	mirrorOf("south", true, 80)
	time.Sleep(time.Second)
	if !get(&si, "web") || si.Labels[contract.LabelClusterset] != "" || len(si.Status.Clusters) != 0 || get(&svc, "web-clusterset") {
		t.Fatalf("foreign import touched or service written: %+v", si)
	}
	if err := west.Client.Delete(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "import written once the foreign one is gone", func() bool {
		return get(&si, "web") && si.Labels[contract.LabelClusterset] == "web" && slices.Equal(clusters(&si), []string{"south"})
	})
}

// inClustersetRange reports whether p is in the default clusterset range.
func inClustersetRange(p int32) bool { return contract.DefaultClustersetRange().Contains(p) }

// gatewayIPs are the local gateway's pod addresses (ensureGateway).
var gatewayIPs = []string{"198.18.0.1", "198.18.0.2"}

var gatewayOnce sync.Once

// ensureGateway creates the local gateway Service and its endpoints once.
func ensureGateway(t *testing.T, west *testenv.Cluster) {
	t.Helper()
	gatewayOnce.Do(func() {
		var eps []testenv.Endpoint
		for _, ip := range gatewayIPs {
			eps = append(eps, testenv.Endpoint{IP: ip, Port: 4143, Ready: true})
		}
		if _, err := west.CreateBackend(t.Context(), testenv.Backend{Namespace: contract.SystemNamespace, Name: contract.GatewayName, Port: 4143, Endpoints: eps}); err != nil {
			t.Fatal(err)
		}
	})
}

// startClusterset runs the clusterset reconciler against west in a manager
// of its own, and returns its counted writes.
func startClusterset(t *testing.T, west *testenv.Cluster) *testenv.WriteCounts {
	t.Helper()
	return startClustersetWith(t, west, clusterset.Options{})
}

// startClustersetWith is startClusterset with options (Gateway, Client and
// SkipNameValidation are set here).
func startClustersetWith(t *testing.T, west *testenv.Cluster, o clusterset.Options) *testenv.WriteCounts {
	t.Helper()
	mo := manager.Options{Scheme: west.Client.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0", Logger: logr.Discard()}
	gw := types.NamespacedName{Namespace: contract.SystemNamespace, Name: contract.GatewayName}
	importer.ConfigureManager(&mo, gw, contract.SystemNamespace)
	clusterset.ConfigureManager(&mo)
	mgr, err := manager.New(west.RestConfig, mo)
	if err != nil {
		t.Fatal(err)
	}
	counted, writes := testenv.CountWrites(mgr.GetClient())
	o.Gateway, o.Client, o.SkipNameValidation = gw, counted, true
	if _, err := clusterset.Setup(mgr, o); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(mctx) }()
	t.Cleanup(func() { cancel(); <-done })

	return writes
}

// mirrorMaker creates mirrors as the importer writes them: claims first,
// then the Service and its slice, with egress ports from next.
type mirrorMaker struct {
	c    *testenv.Cluster
	ns   string
	next int32
}

func (mk *mirrorMaker) add(t *testing.T, svcName, cluster string, ready bool, ports ...int32) {
	t.Helper()
	ctx, west, ns := t.Context(), mk.c, mk.ns
	name := contract.MirrorName(svcName, cluster)
	lbls := map[string]string{contract.LabelLink: cluster, contract.LabelSourceCluster: cluster}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls,
			Annotations: map[string]string{contract.AnnotationRemoteService: svcName}},
	}
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			contract.LabelLink: cluster, contract.LabelSourceCluster: cluster, discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	set := map[int32]claims.Claim{}
	for _, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", p), Port: p, TargetPort: intstr.FromInt32(mk.next)})
		sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: ptr.To(fmt.Sprintf("p%d", p)), Port: ptr.To(mk.next)})
		set[mk.next] = claims.Claim{Owner: claims.LinkOwner(cluster), Namespace: ns, Service: name, Port: p}
		mk.next++
	}
	if cluster != "forged" {
		commitClaims(t, west.Client, claims.Change{Set: set})
	}
	for _, ip := range gatewayIPs {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}})
	}
	if err := west.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := west.Client.Create(ctx, sl); err != nil {
		t.Fatal(err)
	}
}
