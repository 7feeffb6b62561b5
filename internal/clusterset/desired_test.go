package clusterset

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/writer"
)

var gw = []string{"10.0.0.2", "10.0.0.1", "fd00::1"}

// mirrorOf is a mirror of web in shop from cluster, as the importer writes
// it, with ports "name:port".
func mirrorOf(cluster string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: contract.MirrorName("web", cluster),
			Labels:      map[string]string{contract.LabelLink: cluster + "-link", contract.LabelSourceCluster: cluster},
			Annotations: map[string]string{contract.AnnotationRemoteService: "web"},
		},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.9", Ports: ports},
	}
}

func port(name string, p int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: corev1.ProtocolTCP, Port: p, TargetPort: intstr.FromInt32(41000 + p)}
}

func sliceOf(cluster string, ready bool) *discoveryv1.EndpointSlice {
	name := contract.MirrorName("web", cluster)
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{
			contract.LabelLink: cluster + "-link", contract.LabelSourceCluster: cluster, discoveryv1.LabelServiceName: name,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}},
	}
}

// summary is what a case checks of a State.
type summary struct {
	ports    map[int32]int32 // service port -> egress port
	names    []string        // service port names
	clusters string          // annotation
	status   []string
	typ      mcsv1beta1.ServiceImportType
	ips      []string
	ready    bool
	slices   int
	problems []Problem
	// condition is the import's Ready condition, "Status/Reason", when it
	// has no Service.
	condition string
}

func summarize(t *testing.T, st State) *summary {
	t.Helper()
	if len(st.Services) == 0 {
		// Only a ServiceImport that says why it has no address may be
		// written without its Service.
		if len(st.Slices) != 0 || len(st.Imports) > 1 {
			t.Fatalf("objects without a Service: %+v", st)
		}
		if len(st.Problems) == 0 && len(st.Imports) == 0 {
			return nil
		}
		out := &summary{problems: st.Problems}
		if len(st.Imports) == 1 {
			si := st.Imports[0]
			if len(si.Spec.IPs) != 0 {
				t.Errorf("an import without a Service has IPs %v", si.Spec.IPs)
			}
			out.typ, out.condition = si.Spec.Type, conditionOf(si)
			for _, c := range si.Status.Clusters {
				out.status = append(out.status, c.Cluster)
			}
		}
		return out
	}
	if len(st.Services) != 1 || len(st.Imports) != 1 {
		t.Fatalf("want one service, got %d services, %d imports", len(st.Services), len(st.Imports))
	}
	svc, si := st.Services[0], st.Imports[0]
	if svc.Name != "web-clusterset" || svc.Labels[contract.LabelClusterset] != "web" || svc.Annotations[contract.AnnotationRemoteService] != "web" ||
		svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.Selector != nil {
		t.Errorf("service %+v", svc)
	}
	if si.Name != "web" || si.Namespace != "shop" || si.Labels[contract.LabelClusterset] != "web" || len(si.Spec.Ports) != len(svc.Spec.Ports) {
		t.Errorf("import %+v", si)
	}
	s := &summary{ports: map[int32]int32{}, clusters: svc.Annotations[contract.AnnotationClusters], typ: si.Spec.Type, ips: si.Spec.IPs, slices: len(st.Slices)}
	for _, p := range svc.Spec.Ports {
		s.ports[p.Port] = p.TargetPort.IntVal
		s.names = append(s.names, p.Name)
	}
	for _, c := range si.Status.Clusters {
		s.status = append(s.status, c.Cluster)
	}
	sl := st.Slices[0]
	if sl.Name != "web-clusterset" || sl.Labels[discoveryv1.LabelServiceName] != "web-clusterset" ||
		sl.Labels[discoveryv1.LabelManagedBy] != contract.ManagedBy || sl.Labels[contract.LabelClusterset] != "web" ||
		len(sl.Endpoints) != 2 || sl.Endpoints[0].Addresses[0] != "10.0.0.1" || len(sl.Ports) != len(svc.Spec.Ports) {
		t.Errorf("slice %+v", sl)
	}
	for i, p := range sl.Ports {
		if *p.Name != svc.Spec.Ports[i].Name || *p.Port != svc.Spec.Ports[i].TargetPort.IntVal {
			t.Errorf("slice port %d: %s:%d", i, *p.Name, *p.Port)
		}
	}
	s.ready = *sl.Endpoints[0].Conditions.Ready
	s.problems = st.Problems
	// With a Service, Ready follows the IPs: Pending until it has them.
	if want := map[bool]string{true: "True/Ready", false: "False/Pending"}[len(si.Spec.IPs) > 0]; conditionOf(si) != want {
		t.Errorf("import condition %s with IPs %v, want %s", conditionOf(si), si.Spec.IPs, want)
	}
	return s
}

func conditionOf(si *mcsv1beta1.ServiceImport) string {
	var out []string
	for _, c := range si.Status.Conditions {
		out = append(out, string(c.Status)+"/"+c.Reason)
	}
	return strings.Join(out, ",")
}

func TestDesired(t *testing.T) {
	r := contract.DefaultClustersetRange()
	for _, tc := range []struct {
		name string
		in   Input
		want *summary
	}{{
		name: "one mirror",
		in:   Input{Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80))}, MirrorSlices: []*discoveryv1.EndpointSlice{sliceOf("east", true)}},
		want: &summary{ports: map[int32]int32{80: 32000}, names: []string{"http"}, clusters: "east", status: []string{"east"},
			typ: mcsv1beta1.ClusterSetIP, ready: true, slices: 2},
	}, {
		name: "two clusters: union of ports, both listed",
		in: Input{Mirrors: []*corev1.Service{
			mirrorOf("north", port("web", 80), port("https", 443)),
			mirrorOf("east", port("http", 80)),
		}, MirrorSlices: []*discoveryv1.EndpointSlice{sliceOf("east", true), sliceOf("north", true)}},
		want: &summary{ports: map[int32]int32{80: 32000, 443: 32001}, names: []string{"http", "https"}, clusters: "east,north",
			status: []string{"east", "north"}, typ: mcsv1beta1.ClusterSetIP, ready: true, slices: 2},
	}, {
		name: "ready when one source is",
		in: Input{Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80)), mirrorOf("north", port("http", 80))},
			MirrorSlices: []*discoveryv1.EndpointSlice{sliceOf("east", false), sliceOf("north", true)}},
		want: &summary{ports: map[int32]int32{80: 32000}, names: []string{"http"}, clusters: "east,north",
			status: []string{"east", "north"}, typ: mcsv1beta1.ClusterSetIP, ready: true, slices: 2},
	}, {
		name: "not ready when no source is",
		in: Input{Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80)), mirrorOf("north", port("http", 80))},
			MirrorSlices: []*discoveryv1.EndpointSlice{sliceOf("east", false)}},
		want: &summary{ports: map[int32]int32{80: 32000}, names: []string{"http"}, clusters: "east,north",
			status: []string{"east", "north"}, typ: mcsv1beta1.ClusterSetIP, slices: 2},
	}, {
		name: "ports stable and IPs from the existing Service",
		in: Input{
			Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80), port("grpc", 9000))},
			Current: []*corev1.Service{{
				ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-clusterset", Labels: map[string]string{contract.LabelClusterset: "web"}},
				Spec: corev1.ServiceSpec{ClusterIP: "10.96.1.1", ClusterIPs: []string{"10.96.1.1"},
					Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(49500)}}},
			}},
		},
		want: &summary{ports: map[int32]int32{80: 49500, 9000: 32000}, names: []string{"http", "grpc"}, clusters: "east",
			status: []string{"east"}, typ: mcsv1beta1.ClusterSetIP, ips: []string{"10.96.1.1"}, slices: 2},
	}, {
		// Same creation time: the cluster name breaks the tie, and east's
		// "http" is 80, so north's "http" on 8080 is left out.
		name: "a name the older export gives another port is left out; missing names made unique",
		in:   Input{Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80)), mirrorOf("north", port("http", 8080), port("", 9000))}},
		want: &summary{ports: map[int32]int32{80: 32000, 9000: 32001}, names: []string{"http", "tcp-9000"},
			clusters: "east,north", status: []string{"east", "north"}, typ: mcsv1beta1.ClusterSetIP, slices: 2},
	}, {
		// Issue 12: the importing cluster that exports the service too is
		// one of its clusters, as the MCS API intends.
		name: "this cluster, exporting too, joins the clusterset",
		in: Input{Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80))},
			MirrorSlices: []*discoveryv1.EndpointSlice{sliceOf("east", false)},
			LocalCluster: "west", Local: map[exports.Key]exports.Export{
				{Namespace: "shop", Name: "web"}: {Key: exports.Key{Namespace: "shop", Name: "web"}, ReadyEndpoints: 2,
					Ports: []exports.Port{{Name: "http", Protocol: "TCP", Port: 80}}},
				{Namespace: "shop", Name: "other"}: {Key: exports.Key{Namespace: "shop", Name: "other"}, ReadyEndpoints: 1},
			}},
		want: &summary{ports: map[int32]int32{80: 32000}, names: []string{"http"}, clusters: "east,west",
			status: []string{"east", "west"}, typ: mcsv1beta1.ClusterSetIP, ready: true, slices: 2},
	}, {
		name: "a local export alone makes no clusterset service",
		in: Input{LocalCluster: "west", Local: map[exports.Key]exports.Export{
			{Namespace: "shop", Name: "web"}: {Key: exports.Key{Namespace: "shop", Name: "web"}, ReadyEndpoints: 2},
		}},
	}, {
		name: "removed when the last mirror goes",
		in:   Input{},
	}, {
		name: "services without ownership labels are not mirrors",
		in: Input{Mirrors: []*corev1.Service{func() *corev1.Service {
			s := mirrorOf("east", port("http", 80))
			delete(s.Labels, contract.LabelLink)
			return s
		}()}},
	}, {
		name: "a foreign ServiceImport blocks the service",
		in: Input{Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80))},
			Foreign: func(kind, ns, name string) bool { return kind == KindServiceImport && ns == "shop" && name == "web" }},
		want: &summary{problems: []Problem{{Key: Key{"shop", "web"}, Reason: NameTaken, Object: "ServiceImport shop/web"}}},
	}, {
		name: "exhausted range",
		in:   Input{Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80), port("https", 443))}, Ports: contract.Range{Min: 32000, Max: 32000}},
		want: &summary{problems: []Problem{{Key: Key{"shop", "web"}, Reason: PortsExhausted}},
			typ: mcsv1beta1.ClusterSetIP, status: []string{"east"}, condition: "False/PortsExhausted"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.Ports == (contract.Range{}) {
				tc.in.Ports = r
			}
			tc.in.Gateway = gw
			got := summarize(t, Desired(tc.in))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// Diff of a state against itself writes nothing; against nothing creates
// everything; an empty desired state deletes every owned object.
func TestDiff(t *testing.T) {
	in := Input{Ports: contract.DefaultClustersetRange(), Gateway: gw,
		Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80)), mirrorOf("north", port("http", 80))}}
	st := Desired(in)
	same := Objects{Imports: st.Imports, Services: st.Services, Slices: st.Slices}
	if ops := Diff(st, same); len(ops) != 0 {
		t.Fatalf("steady state writes %d: %+v", len(ops), ops[0])
	}
	if ops := Diff(st, Objects{}); len(ops) != 4 {
		t.Fatalf("initial writes %d, want 4 (import, service, two slices)", len(ops))
	}
	del := Diff(State{}, same)
	if len(del) != 4 || del[0].Verb != writer.Delete || kindOfTest(del[0].Object) != KindServiceImport || kindOfTest(del[3].Object) != KindService {
		t.Fatalf("deletes %+v", del)
	}

	// One cluster gone: the Service's annotation and the import's status.
	in.Mirrors = in.Mirrors[:1]
	ops := Diff(Desired(in), same)
	var verbs []string
	for _, op := range ops {
		verbs = append(verbs, string(op.Verb)+" "+kindOfTest(op.Object))
	}
	if want := []string{"update Service", "update-status ServiceImport"}; !reflect.DeepEqual(verbs, want) {
		t.Fatalf("ops %v, want %v", verbs, want)
	}
	if same.Services[0].Annotations[contract.AnnotationClusters] != "east,north" {
		t.Fatal("Diff modified an existing object")
	}
}

// kindOfTest names the kinds Diff writes, for assertions.
func kindOfTest(obj client.Object) string {
	switch obj.(type) {
	case *corev1.Service:
		return KindService
	case *discoveryv1.EndpointSlice:
		return KindEndpointSlice
	case *mcsv1beta1.ServiceImport:
		return KindServiceImport
	}
	return "?"
}

// A clusterset Service that is no longer wanted (its last mirror went, or a
// forged one carries the label and a finalizer) keeps its egress ports until
// it is gone: another clusterset service must not get them meanwhile
// (issue 11, findings 1 and 2a).
func TestUnwantedClustersetServiceKeepsItsPortsUntilGone(t *testing.T) {
	old := Desired(Input{Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80))}, Gateway: gw, Ports: contract.DefaultClustersetRange()})
	lingering := old.Services[0].DeepCopy()
	lingering.Namespace = "tenant"
	now := metav1.Now()
	lingering.DeletionTimestamp = &now
	api := mirrorOf("north", port("http", 8080))
	api.Namespace, api.Name, api.Annotations[contract.AnnotationRemoteService] = "payments", contract.MirrorName("api", "north"), "api"
	st := Desired(Input{Mirrors: []*corev1.Service{api}, Current: []*corev1.Service{lingering}, Gateway: gw, Ports: contract.DefaultClustersetRange()})
	if len(st.Services) != 1 {
		t.Fatalf("want payments/api's clusterset Service, got %d, problems %v", len(st.Services), st.Problems)
	}
	held := lingering.Spec.Ports[0].TargetPort.IntVal
	if got := st.Services[0].Spec.Ports[0].TargetPort.IntVal; got == held {
		t.Fatalf("payments/api-clusterset got egress port %d, still held by %s/%s", got, lingering.Namespace, lingering.Name)
	}
}
