package mirror

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

func TestDesiredMirrorObjects(t *testing.T) {
	e := export("shop", "cart", 80, 443)
	e.Labels = map[string]string{"app": "cart", contract.LabelLink: "spoofed"}
	e.Annotations = map[string]string{"note": "x"}
	e.Ports[1].AppProtocol = "https"
	st := Desired(input(e))

	if st.Imported != 1 || len(st.Services) != 1 || len(st.Slices) != 1 || len(st.Problems) != 0 {
		t.Fatalf("got %d imported, %d services, %d slices, problems %v", st.Imported, len(st.Services), len(st.Slices), st.Problems)
	}
	svc := st.Services[0]
	if svc.Namespace != "shop" || svc.Name != "cart-east" {
		t.Errorf("mirror %s/%s, want shop/cart-east", svc.Namespace, svc.Name)
	}
	wantLabels := map[string]string{
		"app": "cart", contract.LabelLink: "east", contract.LabelSourceCluster: "east", mcsv1beta1.LabelSourceCluster: "east",
	}
	if !maps.Equal(svc.Labels, wantLabels) {
		t.Errorf("labels %v, want %v (exported labels copied, ownership labels win)", svc.Labels, wantLabels)
	}
	if !maps.Equal(svc.Annotations, map[string]string{"note": "x", contract.AnnotationRemoteService: "cart",
		contract.AnnotationExportedKeys: `{"labels":["app"],"annotations":["note"]}`, contract.AnnotationReadyEndpoints: "1"}) {
		t.Errorf("annotations %v", svc.Annotations)
	}
	if len(svc.Spec.Selector) != 0 || svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("mirror must be a selector-less ClusterIP Service: %+v", svc.Spec)
	}
	var got []string
	for _, p := range svc.Spec.Ports {
		got = append(got, fmt.Sprintf("%s %s %d->%s", p.Name, p.Protocol, p.Port, p.TargetPort.String()))
	}
	if want := []string{"p80 TCP 80->10000", "p443 TCP 443->10001"}; !slices.Equal(got, want) {
		t.Errorf("ports %v, want %v", got, want)
	}
	if st.Ports[PortKey{"shop", "cart-east", 443}] != 10001 {
		t.Errorf("Ports %v", st.Ports)
	}

	sl := st.Slices[0]
	wantSliceLabels := map[string]string{
		discoveryv1.LabelServiceName: "cart-east", discoveryv1.LabelManagedBy: contract.ManagedBy,
		mcsv1beta1.LabelSourceCluster: "east",
		contract.LabelLink:            "east", contract.LabelSourceCluster: "east",
	}
	if sl.Name != "cart-east" || !maps.Equal(sl.Labels, wantSliceLabels) || sl.AddressType != discoveryv1.AddressTypeIPv4 {
		t.Errorf("slice %s labels %v type %s", sl.Name, sl.Labels, sl.AddressType)
	}
	var addrs []string
	for _, ep := range sl.Endpoints {
		addrs = append(addrs, ep.Addresses...)
	}
	if !slices.Equal(addrs, []string{"10.0.0.1", "10.0.0.2"}) || !slices.Equal(readyOf(sl), []bool{true, true}) {
		t.Errorf("endpoints %v ready %v: want the gateway pods, sorted, ready", addrs, readyOf(sl))
	}
	if len(sl.Ports) != 2 || *sl.Ports[0].Name != "p80" || *sl.Ports[0].Port != 10000 || *sl.Ports[1].Port != 10001 || *sl.Ports[1].AppProtocol != "https" {
		t.Errorf("slice ports %+v: want the egress ports under the Service port names", sl.Ports)
	}
}

func TestDesiredReadiness(t *testing.T) {
	notReady := export("ns", "a", 80)
	notReady.ReadyEndpoints = 0
	cases := []struct {
		name   string
		export exports.Export
		health Health
		want   bool
	}{
		{"export ready, gateway healthy", export("ns", "a", 80), Healthy, true},
		{"export without ready endpoints", notReady, Healthy, false},
		{"gateway unhealthy", export("ns", "a", 80), Unhealthy, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := input(tc.export)
			in.Health = tc.health
			st := Desired(in)
			if len(st.Services) != 1 {
				t.Fatalf("mirror must stay whatever the readiness: %d services", len(st.Services))
			}
			if got := readyOf(st.Slices[0]); !slices.Equal(got, []bool{tc.want, tc.want}) {
				t.Errorf("ready %v, want all %v", got, tc.want)
			}
		})
	}
	in := input(export("ns", "a", 80))
	in.Health = Stale
	if st := Desired(in); len(st.Services)+len(st.Slices)+st.Imported != 0 {
		t.Errorf("stale: want everything withdrawn, got %+v", st)
	}
}

func TestDesiredFiltersAndProblems(t *testing.T) {
	udp := export("ns", "dns", 53)
	udp.Ports[0].Protocol = "UDP"
	mixed := export("ns", "mixed", 53, 80)
	mixed.Ports[0].Protocol = "UDP"
	labelled := export("ns", "tier", 80)
	labelled.Labels = map[string]string{"tier": "front"}
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "taken-east"}}
	otherLink := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "shared-east",
		Labels: map[string]string{contract.LabelLink: "east-2", contract.LabelSourceCluster: "east"}}}
	foreignSlice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sliced-east-ipv6"}}
	mine := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "mine-east",
		Labels: map[string]string{contract.LabelLink: "east", contract.LabelSourceCluster: "east"}}}

	cases := []struct {
		name         string
		exports      []exports.Export
		link         Link
		nsExists     func(string) bool
		lookup       mapLookup
		wantMirrors  []string
		wantProblems []string
	}{
		{name: "namespace filter", exports: []exports.Export{export("a", "x", 80), export("b", "y", 80)},
			link: Link{Name: "east", Cluster: "east", Namespaces: []string{"b"}}, wantMirrors: []string{"b/y-east"}},
		{name: "label selector on exported labels", exports: []exports.Export{labelled, export("ns", "plain", 80)},
			link:        Link{Name: "east", Cluster: "east", Selector: labels.SelectorFromSet(labels.Set{"tier": "front"})},
			wantMirrors: []string{"ns/tier-east"}},
		{name: "missing namespace is reported", exports: []exports.Export{export("gone", "x", 80), export("ns", "y", 80)},
			nsExists: func(ns string) bool { return ns != "gone" }, wantMirrors: []string{"ns/y-east"},
			wantProblems: []string{"gone/x NamespaceMissing"}},
		{name: "UDP-only export is skipped, mixed keeps TCP", exports: []exports.Export{udp, mixed},
			wantMirrors: []string{"ns/mixed-east"}, wantProblems: []string{"ns/dns NoTCPPorts"}},
		{name: "foreign Service holds the name", exports: []exports.Export{export("ns", "taken", 80)},
			lookup: mapLookup{"Service/ns/taken-east": foreign}, wantProblems: []string{"ns/taken NameClash Service ns/taken-east by \"\""}},
		{name: "another Link holds the name", exports: []exports.Export{export("ns", "shared", 80)},
			lookup: mapLookup{"Service/ns/shared-east": otherLink}, wantProblems: []string{"ns/shared NameClash Service ns/shared-east by \"east-2\""}},
		{name: "foreign EndpointSlice holds a slice name", exports: []exports.Export{export("ns", "sliced", 80)},
			lookup: mapLookup{"EndpointSlice/ns/sliced-east-ipv6": foreignSlice}, wantProblems: []string{"ns/sliced NameClash EndpointSlice ns/sliced-east-ipv6 by \"\""}},
		{name: "own object is no clash", exports: []exports.Export{export("ns", "mine", 80)},
			lookup: mapLookup{"Service/ns/mine-east": mine}, wantMirrors: []string{"ns/mine-east"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := input(tc.exports...)
			if tc.link.Name != "" {
				in.Link = tc.link
			}
			if tc.nsExists != nil {
				in.NamespaceExists = tc.nsExists
			}
			if tc.lookup != nil {
				in.Lookup = tc.lookup
			}
			st := Desired(in)
			var mirrors, problems []string
			for _, s := range st.Services {
				mirrors = append(mirrors, s.Namespace+"/"+s.Name)
			}
			for _, p := range st.Problems {
				s := p.Export.String() + " " + string(p.Reason)
				if p.Object != "" {
					s += fmt.Sprintf(" %s by %q", p.Object, p.Holder)
				}
				problems = append(problems, s)
			}
			if !slices.Equal(mirrors, tc.wantMirrors) || !slices.Equal(problems, tc.wantProblems) {
				t.Errorf("mirrors %v problems %v\nwant    %v problems %v", mirrors, problems, tc.wantMirrors, tc.wantProblems)
			}
			if st.Imported != len(tc.wantMirrors) {
				t.Errorf("Imported %d, want %d", st.Imported, len(tc.wantMirrors))
			}
		})
	}
}

func TestDesiredPortsStableAndExhausted(t *testing.T) {
	st := Desired(input(export("ns", "b", 80), export("ns", "a", 80)))
	if st.Ports[PortKey{"ns", "a-east", 80}] != 10000 || st.Ports[PortKey{"ns", "b-east", 80}] != 10001 {
		t.Fatalf("fresh allocation in key order: %v", st.Ports)
	}
	// Unexporting a and exporting c in one reconcile: b keeps 10001 because
	// it reads it back, and c must not get a's 10000 while a's mirror still
	// exists. Its delete runs beside c's create, and a finalizer can keep it
	// for good: c's clients would reach a (issue 11, findings 1 and 2a).
	in := input(export("ns", "b", 80), export("ns", "c", 80))
	in.Owned = applied(st)
	st2 := Desired(in)
	if st2.Ports[PortKey{"ns", "b-east", 80}] != 10001 || st2.Ports[PortKey{"ns", "c-east", 80}] != 10002 {
		t.Errorf("b must keep 10001 and c take a fresh port while a still holds 10000: %v", st2.Ports)
	}
	// Once a's mirror is gone, its port is free again; c keeps what it got.
	gone := applied(st2)
	in.Owned = gone
	if st3 := Desired(in); st3.Ports[PortKey{"ns", "c-east", 80}] != 10002 {
		t.Errorf("c must keep its port: %v", st3.Ports)
	}
	d := input(export("ns", "d", 80))
	d.Owned = Objects{}
	if st4 := Desired(d); st4.Ports[PortKey{"ns", "d-east", 80}] != 10000 {
		t.Errorf("with a gone, 10000 is free: %v", st4.Ports)
	}

	small := input(export("ns", "a", 80), export("ns", "b", 80, 81))
	small.Ports = contract.Range{Min: 10000, Max: 10001}
	st5 := Desired(small)
	if st5.Imported != 1 || len(st5.Problems) != 1 || st5.Problems[0].Reason != PortsExhausted || st5.Problems[0].Export.Name != "b" {
		t.Errorf("a fits, b (2 ports) cannot: imported %d problems %v", st5.Imported, st5.Problems)
	}
	if len(st5.Ports) != 1 {
		t.Errorf("an export that did not fit must not hold ports: %v", st5.Ports)
	}
}

func TestDesiredDualStackAndAffinity(t *testing.T) {
	e := export("ns", "a", 80)
	e.SessionAffinity = "ClientIP"
	in := input(e)
	in.Gateway = []string{"fd00::1", "10.0.0.1", "10.0.0.1", "not-an-ip"}
	st := Desired(in)
	if len(st.Slices) != 2 || st.Slices[0].Name != "a-east" || st.Slices[1].Name != "a-east-ipv6" ||
		st.Slices[1].AddressType != discoveryv1.AddressTypeIPv6 || len(st.Slices[0].Endpoints) != 1 {
		t.Fatalf("want one IPv4 slice (deduped) and one IPv6 slice: %+v", st.Slices)
	}
	s := st.Services[0].Spec
	if s.SessionAffinity != corev1.ServiceAffinityClientIP || *s.SessionAffinityConfig.ClientIP.TimeoutSeconds != DefaultClientIPTimeout {
		t.Errorf("affinity %s %+v", s.SessionAffinity, s.SessionAffinityConfig)
	}
}

func TestDesiredDoesNotModifyInput(t *testing.T) {
	e := export("ns", "a", 80)
	e.Labels = map[string]string{"k": "v"}
	in := input(e)
	Desired(in)
	if len(in.Exports[0].Labels) != 1 {
		t.Errorf("Desired wrote into the export's labels: %v", in.Exports[0].Labels)
	}
}

// TestMirrorNamesProperty: whatever the names, every mirror name is a valid
// DNS label of at most 63 characters, the same on every run, and distinct
// for distinct exports.
func TestMirrorNamesProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
	randLabel := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		b[0], b[n-1] = 'a'+byte(r.IntN(26)), 'a'+byte(r.IntN(26))
		return string(b)
	}
	var es []exports.Export
	seen := map[string]bool{}
	for len(es) < 3000 {
		name := randLabel(1 + r.IntN(63))
		if seen[name] {
			continue
		}
		seen[name] = true
		// Many share a 52-character prefix, which truncation alone would merge.
		if r.IntN(2) == 0 && len(name) > 10 {
			name = strings.Repeat("p", 52) + name[:min(len(name), 11)]
			if seen[name] {
				continue
			}
			seen[name] = true
		}
		es = append(es, export("ns", name, 80))
	}
	in := input(es...)
	in.Link = Link{Name: "l", Cluster: "a-rather-long-cluster-name-0123456789"}
	in.Ports = contract.Range{Min: 20000, Max: 30000}
	a, b := Desired(in), Desired(in)
	names := map[string]bool{}
	for i, s := range a.Services {
		if errs := validation.IsDNS1035Label(s.Name); len(errs) > 0 {
			t.Fatalf("%q: %v", s.Name, errs)
		}
		if s.Name != b.Services[i].Name {
			t.Fatalf("not deterministic: %q vs %q", s.Name, b.Services[i].Name)
		}
		if names[s.Name] {
			t.Fatalf("collision on %q", s.Name)
		}
		names[s.Name] = true
	}
	if a.Imported != len(es) {
		t.Fatalf("imported %d of %d (problems %v)", a.Imported, len(es), a.Problems[:min(3, len(a.Problems))])
	}
}

func TestLabelValuesAreValid(t *testing.T) {
	st := Desired(input(export("ns", "a", 80)))
	for _, obj := range []metav1.Object{st.Services[0], st.Slices[0]} {
		for k, v := range obj.GetLabels() {
			if errs := validation.IsQualifiedName(k); len(errs) > 0 {
				t.Errorf("label key %q: %v", k, errs)
			}
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("label %s=%q: %v", k, v, errs)
			}
		}
	}
}
