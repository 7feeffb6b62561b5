package clusterset

import (
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// aged records the export's type and creation time on a mirror, as the
// importer writes them.
func aged(s *corev1.Service, typ exports.Type, created time.Time) *corev1.Service {
	if typ == exports.Headless {
		s.Annotations[contract.AnnotationExportType] = string(typ)
	}
	s.Annotations[contract.AnnotationExportCreated] = created.Format(time.RFC3339)
	return s
}

// named makes s the headless mirror of a StatefulSet and returns it with
// one host mirror per hostname, at 10.96.1.<i>.
func named(s *corev1.Service, hosts ...string) []*corev1.Service {
	s.Spec.ClusterIP = corev1.ClusterIPNone
	out := []*corev1.Service{s}
	cluster := s.Labels[contract.LabelSourceCluster]
	for i, h := range hosts {
		hs := mirrorOf(cluster, s.Spec.Ports...)
		hs.Name = contract.HostMirrorName("web", cluster, h)
		hs.Annotations[contract.AnnotationRemoteHostname] = h
		hs.Spec.ClusterIP = "10.96.1." + string(rune('1'+i))
		hs.Spec.ClusterIPs = []string{hs.Spec.ClusterIP}
		out = append(out, hs)
	}
	return out
}

func readySlice(name, cluster string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{
			contract.LabelLink: cluster + "-link", contract.LabelSourceCluster: cluster, discoveryv1.LabelServiceName: name,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
}

// podRecord is what one MCS EndpointSlice's endpoint says.
type podRecord struct{ slice, cluster, hostname, ip string }

func podRecords(st State) []podRecord {
	var out []podRecord
	for _, sl := range st.Slices {
		if sl.Labels[mcsv1beta1.LabelServiceName] == "" {
			continue
		}
		for _, ep := range sl.Endpoints {
			out = append(out, podRecord{sl.Name, sl.Labels[mcsv1beta1.LabelSourceCluster], ptr.Deref(ep.Hostname, ""), ep.Addresses[0]})
		}
	}
	return out
}

func TestDesiredHeadless(t *testing.T) {
	// east exports a StatefulSet first; north exports web later as a
	// ClusterSetIP Service. The oldest wins: the import is headless, east's
	// pods are named, and north is one address, its mirror's.
	east := named(aged(mirrorOf("east", port("http", 80)), exports.Headless, t0), "web-0", "web-1")
	north := aged(mirrorOf("north", port("http", 80), port("admin", 9000)), exports.ClusterSetIP, t0.Add(time.Minute))
	in := Input{Ports: contract.DefaultClustersetRange(), Gateway: gw,
		Mirrors:      append(east, north),
		MirrorSlices: []*discoveryv1.EndpointSlice{readySlice(east[1].Name, "east"), readySlice("web-north", "north")}}
	st := Desired(in)
	if len(st.Services) != 0 || len(st.Imports) != 1 || len(st.Problems) != 0 {
		t.Fatalf("services %d, imports %d, problems %v: want one headless import and no clusterset Service", len(st.Services), len(st.Imports), st.Problems)
	}
	si := st.Imports[0]
	if si.Spec.Type != mcsv1beta1.Headless || len(si.Spec.IPs) != 0 || len(si.Spec.Ports) != 2 || len(si.Status.Clusters) != 2 {
		t.Errorf("import %+v", si)
	}
	want := []podRecord{
		{"web.east", "east", "web-0", "10.96.1.1"},
		{"web.east", "east", "web-1", "10.96.1.2"},
		{"web.north", "north", "", "10.96.0.9"},
	}
	if got := podRecords(st); !reflect.DeepEqual(got, want) {
		t.Errorf("pod records\n got %v\nwant %v", got, want)
	}
	// Readiness is each host mirror's: web-0's slice is ready, web-1 has
	// none yet.
	for _, sl := range st.Slices {
		if sl.Name == "web.east" && (!*sl.Endpoints[0].Conditions.Ready || *sl.Endpoints[1].Conditions.Ready) {
			t.Errorf("east readiness %+v", sl.Endpoints)
		}
	}
	// Stable: applied, nothing to write.
	if ops := Diff(st, Objects{Imports: st.Imports, Slices: st.Slices}); len(ops) != 0 {
		t.Errorf("writes after applying: %v", ops)
	}

	// Were north's export the oldest, the import would be ClusterSetIP,
	// with north alone behind it: east's pods have no mirror to share the
	// address with.
	in.Mirrors = append(east, aged(mirrorOf("north", port("http", 80)), exports.ClusterSetIP, t0.Add(-time.Minute)))
	st = Desired(in)
	if len(st.Imports) != 1 || st.Imports[0].Spec.Type != mcsv1beta1.ClusterSetIP || len(st.Services) != 1 ||
		st.Services[0].Annotations[contract.AnnotationClusters] != "north" || len(podRecords(st)) != 0 {
		t.Errorf("ClusterSetIP winner: imports %+v, services %+v", st.Imports, st.Services)
	}
}

// The oldest export's definition of a port wins the union: north, the
// oldest, names 42 "b" and adds 43; east's "a" for 42 is not used. A port
// whose name the oldest gives to another number is left out: west's
// "c" on 44.
func TestDesiredPortUnionOldestFirst(t *testing.T) {
	east := aged(mirrorOf("east", port("a", 42)), exports.ClusterSetIP, t0.Add(time.Minute))
	north := aged(mirrorOf("north", port("b", 42), port("c", 43)), exports.ClusterSetIP, t0)
	west := aged(mirrorOf("west", port("c", 44), port("d", 45)), exports.ClusterSetIP, t0.Add(2*time.Minute))
	st := Desired(Input{Ports: contract.DefaultClustersetRange(), Gateway: gw, Mirrors: []*corev1.Service{east, north, west}})
	var names []string
	for _, p := range st.Imports[0].Spec.Ports {
		names = append(names, fmt.Sprintf("%s/%d", p.Name, p.Port))
	}
	if want := []string{"b/42", "c/43", "d/45"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ports %v, want %v", names, want)
	}
}

// A service this cluster exports and no Link imports has its ServiceImport
// here too, as in every cluster of the clusterset.
func TestDesiredLocalOnlyExport(t *testing.T) {
	e := exports.TCP("shop", "web", 80)
	e.ReadyEndpoints = 2
	st := Desired(Input{Ports: contract.DefaultClustersetRange(), Gateway: gw,
		LocalCluster: "west", Local: exports.Of(e)})
	if len(st.Imports) != 1 || len(st.Services) != 1 || st.Services[0].Annotations[contract.AnnotationClusters] != "west" {
		t.Fatalf("imports %+v, services %+v", st.Imports, st.Services)
	}
	if c := st.Imports[0].Status.Clusters; len(c) != 1 || c[0].Cluster != "west" {
		t.Errorf("status clusters %v", c)
	}
	// Headless and local only: the import, no Service, and the pods
	// themselves in the cluster's MCS slice, at their own ports, so this
	// cluster's clusterset DNS names them too.
	e.Type = exports.Headless
	e.LocalPods = []exports.LocalPod{{Hostname: "web-0", Addresses: []string{"10.1.0.1"}}, {Addresses: []string{"10.1.0.2", "fd00::2"}}}
	e.LocalPorts = []exports.Port{{Name: "http", Protocol: "TCP", Port: 8080}, {Name: "dns", Protocol: "UDP", Port: 53}}
	st = Desired(Input{Ports: contract.DefaultClustersetRange(), Gateway: gw, LocalCluster: "west", Local: exports.Of(e)})
	if len(st.Imports) != 1 || st.Imports[0].Spec.Type != mcsv1beta1.Headless || len(st.Services) != 0 || len(st.Slices) != 2 {
		t.Fatalf("headless local: imports %+v, services %d, slices %d", st.Imports, len(st.Services), len(st.Slices))
	}
	v4, v6 := st.Slices[0], st.Slices[1]
	if v4.Name != "web.west" || v6.Name != "web.west.ipv6" || v4.Labels[mcsv1beta1.LabelSourceCluster] != "west" || v4.Labels[mcsv1beta1.LabelServiceName] != "web" {
		t.Errorf("slices %s %s, labels %v", v4.Name, v6.Name, v4.Labels)
	}
	var got []string
	for _, ep := range append(v4.Endpoints, v6.Endpoints...) {
		got = append(got, fmt.Sprintf("%s=%s/%v", ptr.Deref(ep.Hostname, ""), ep.Addresses[0], *ep.Conditions.Ready))
	}
	if want := []string{"web-0=10.1.0.1/true", "=10.1.0.2/true", "=fd00::2/true"}; !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints %v, want %v", got, want)
	}
	if len(v4.Ports) != 2 || *v4.Ports[0].Port != 8080 || *v4.Ports[1].Protocol != corev1.ProtocolUDP {
		t.Errorf("ports %+v: want the pods' own, every protocol", v4.Ports)
	}
	// An older ClusterSetIP export elsewhere wins the type: the clusterset
	// Service still sends this cluster its share, to its own pods, named
	// or not.
	e.Created = t0.Add(time.Minute)
	east := aged(mirrorOf("east", port("http", 80)), exports.ClusterSetIP, t0)
	st = Desired(Input{Ports: contract.DefaultClustersetRange(), Gateway: gw, Mirrors: []*corev1.Service{east}, LocalCluster: "west", Local: exports.Of(e)})
	if len(st.Services) != 1 || st.Services[0].Annotations[contract.AnnotationClusters] != "east,west" {
		t.Errorf("ClusterSetIP winner with a local headless export: services %+v", st.Services)
	}
	// The other way round: an older headless export elsewhere wins, and
	// this cluster's own ClusterSetIP export is one endpoint, its Service's
	// ClusterIP on the Service's ports, as a remote mirror would be.
	e.Type, e.LocalPods, e.LocalPorts, e.LocalClusterIPs = exports.ClusterSetIP, nil, nil, []string{"10.96.0.9"}
	e.Ports = []exports.Port{{Name: "http", Protocol: "TCP", Port: 80}}
	hl := aged(mirrorOf("east", port("http", 80)), exports.Headless, t0)
	st = Desired(Input{Ports: contract.DefaultClustersetRange(), Gateway: gw, Mirrors: []*corev1.Service{hl}, LocalCluster: "west", Local: exports.Of(e)})
	var own *discoveryv1.EndpointSlice
	for _, sl := range st.Slices {
		if sl.Name == "web.west" {
			own = sl
		}
	}
	if own == nil || len(own.Endpoints) != 1 || own.Endpoints[0].Addresses[0] != "10.96.0.9" || len(own.Ports) != 1 || *own.Ports[0].Port != 80 {
		t.Errorf("local ClusterSetIP export under a headless winner: slice %+v", own)
	}
}

// The ServiceImport carries the oldest export's session affinity, traffic
// policy and distribution, and one IP family per IP (MCS conformance).
func TestDesiredImportCarriesServiceFields(t *testing.T) {
	east := aged(mirrorOf("east", port("http", 80)), exports.ClusterSetIP, t0)
	east.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	east.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](10)}}
	east.Annotations[contract.AnnotationInternalTrafficPolicy] = "Cluster"
	east.Annotations[contract.AnnotationTrafficDistribution] = "PreferClose"
	north := aged(mirrorOf("north", port("http", 80)), exports.ClusterSetIP, t0.Add(time.Minute))
	cur := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-clusterset", Labels: map[string]string{contract.LabelClusterset: "web"}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.7.7", ClusterIPs: []string{"10.96.7.7", "fd00::7"}}}
	st := Desired(Input{Ports: contract.DefaultClustersetRange(), Gateway: gw, Mirrors: []*corev1.Service{east, north}, Current: []*corev1.Service{cur}})
	spec := st.Imports[0].Spec
	if spec.SessionAffinity != corev1.ServiceAffinityClientIP || *spec.SessionAffinityConfig.ClientIP.TimeoutSeconds != 10 ||
		ptr.Deref(spec.InternalTrafficPolicy, "") != "Cluster" || ptr.Deref(spec.TrafficDistribution, "") != "PreferClose" {
		t.Errorf("import spec %+v: want east's affinity, policy and distribution", spec)
	}
	if want := []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}; !reflect.DeepEqual(spec.IPFamilies, want) || len(spec.IPs) != 2 {
		t.Errorf("IPs %v, families %v", spec.IPs, spec.IPFamilies)
	}
	// Applied, nothing to write; north older, its defaults replace them.
	if ops := Diff(st, Objects{Imports: st.Imports, Services: st.Services, Slices: st.Slices}); len(ops) != 0 {
		t.Errorf("writes after applying: %v", ops)
	}
	north.Annotations[contract.AnnotationExportCreated] = t0.Add(-time.Minute).Format(time.RFC3339)
	st2 := Desired(Input{Ports: contract.DefaultClustersetRange(), Gateway: gw, Mirrors: []*corev1.Service{east, north}, Current: []*corev1.Service{cur}})
	if s := st2.Imports[0].Spec; s.SessionAffinity != corev1.ServiceAffinityNone || s.InternalTrafficPolicy != nil || s.TrafficDistribution != nil {
		t.Errorf("north older: %+v", s)
	}
	if ops := Diff(st2, Objects{Imports: st.Imports, Services: st.Services, Slices: st.Slices}); len(ops) != 1 {
		t.Errorf("ops %v: want the ServiceImport updated", ops)
	}
	// Values a tenant wrote on the mirror that the API would refuse are
	// left out.
	north.Annotations[contract.AnnotationInternalTrafficPolicy] = "Nearby"
	north.Annotations[contract.AnnotationTrafficDistribution] = "Prefer Close;"
	st3 := Desired(Input{Ports: contract.DefaultClustersetRange(), Gateway: gw, Mirrors: []*corev1.Service{east, north}, Current: []*corev1.Service{cur}})
	if s := st3.Imports[0].Spec; s.InternalTrafficPolicy != nil || s.TrafficDistribution != nil {
		t.Errorf("invalid values carried: %+v", s)
	}
}

// The ServiceImport carries the oldest export's exported labels and
// annotations; keys it stops exporting are removed, and a user's
// annotation (ferry.dev/affinity) is kept.
func TestDesiredImportExportedMetadata(t *testing.T) {
	exported := func(s *corev1.Service, lbls, anns map[string]string) *corev1.Service {
		maps.Copy(s.Labels, lbls)
		maps.Copy(s.Annotations, anns)
		s.Annotations[contract.AnnotationExportedKeys] = mirror.ExportedKeysOf(lbls, anns)
		return s
	}
	east := exported(aged(mirrorOf("east", port("http", 80)), exports.ClusterSetIP, t0), map[string]string{"tier": "gold"}, map[string]string{"team": "a"})
	// A tenant's edit of the record: no export carries ferry.dev/ keys.
	east.Annotations[contract.AnnotationExportedKeys] = `{"labels":["tier"],"annotations":["team","ferry.dev/remote-service"]}`
	north := exported(aged(mirrorOf("north", port("http", 80)), exports.ClusterSetIP, t0.Add(time.Minute)), map[string]string{"tier2": "x"}, nil)
	in := Input{Ports: contract.DefaultClustersetRange(), Gateway: gw, Mirrors: []*corev1.Service{east, north}}
	si := Desired(in).Imports[0]
	if si.Labels["tier"] != "gold" || si.Labels["tier2"] != "" || si.Labels[contract.LabelClusterset] != "web" || si.Annotations["team"] != "a" ||
		si.Annotations[contract.AnnotationRemoteService] != "" {
		t.Fatalf("import metadata %v %v: want east's", si.Labels, si.Annotations)
	}
	// A user sets the affinity; east stops exporting "team".
	live := si.DeepCopy()
	live.Annotations[contract.AnnotationAffinity] = "local"
	delete(east.Annotations, "team")
	east.Annotations[contract.AnnotationExportedKeys] = mirror.ExportedKeysOf(map[string]string{"tier": "gold"}, nil)
	st := Desired(in)
	ops := Diff(st, Objects{Imports: []*mcsv1beta1.ServiceImport{live}, Services: st.Services, Slices: st.Slices})
	if len(ops) != 1 {
		t.Fatalf("ops %v", ops)
	}
	got := ops[0].Object.(*mcsv1beta1.ServiceImport)
	if _, still := got.Annotations["team"]; still || got.Annotations[contract.AnnotationAffinity] != "local" || got.Labels["tier"] != "gold" {
		t.Errorf("updated metadata %v %v", got.Labels, got.Annotations)
	}
}

// Ports no gateway carries are listed on the ServiceImport, as the MCS API
// has it, and left out of the clusterset Service: a mirror's from its
// annotation, this cluster's from its export.
func TestDesiredImportListsUncarriedPorts(t *testing.T) {
	east := aged(mirrorOf("east", port("tcp", 42)), exports.ClusterSetIP, t0)
	east.Annotations[contract.AnnotationUncarriedPorts] = "udp/UDP/42,bad/QUIC/1"
	local := exports.TCP("shop", "web", 42)
	local.Ports[0].Name = "tcp"
	local.Ports = append(local.Ports, exports.Port{Name: "stcp", Protocol: "SCTP", Port: 142})
	local.Created = t0.Add(time.Minute)
	st := Desired(Input{Ports: contract.DefaultClustersetRange(), Gateway: gw, Mirrors: []*corev1.Service{east},
		LocalCluster: "west", Local: exports.Of(local)})
	var got []string
	for _, p := range st.Imports[0].Spec.Ports {
		got = append(got, fmt.Sprintf("%s/%s/%d", p.Name, p.Protocol, p.Port))
	}
	if want := []string{"tcp/TCP/42", "udp/UDP/42", "stcp/SCTP/142"}; !reflect.DeepEqual(got, want) {
		t.Errorf("import ports %v, want %v", got, want)
	}
	if ps := st.Services[0].Spec.Ports; len(ps) != 1 || ps[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("clusterset Service ports %+v: want TCP only", ps)
	}
}
