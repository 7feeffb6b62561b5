package exportwatch

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func se(ns, name string, mut ...func(*mcsv1beta1.ServiceExport)) *mcsv1beta1.ServiceExport {
	s := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1, CreationTimestamp: metav1.NewTime(created)}}
	for _, m := range mut {
		m(s)
	}
	return s
}

func svc(ns, name string, mut ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: "10.0.0.1",
			Ports:     []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
	for _, m := range mut {
		m(s)
	}
	return s
}

type ep struct {
	ip, host, uid string
	ready         *bool
}

func slice(ns, svcName, name string, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, e := range eps {
		x := discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{Ready: e.ready}}
		if e.host != "" {
			x.Hostname = ptr.To(e.host)
		}
		if e.uid != "" {
			x.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "p-" + e.uid, UID: types.UID(e.uid)}
		}
		s.Endpoints = append(s.Endpoints, x)
	}
	return s
}

func ipv6(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	s.AddressType = discoveryv1.AddressTypeIPv6
	return s
}

func withPorts(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	s.Ports = []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}}
	return s
}

var (
	yes = ptr.To(true)
	no  = ptr.To(false)
)

func base(mut ...func(*exports.Export)) exports.Export {
	e := exports.Export{
		Key:             exports.Key{Namespace: "ns", Name: "foo"},
		Type:            exports.ClusterSetIP,
		Ports:           []exports.Port{{Name: "http", Protocol: "TCP", Port: 80}},
		SessionAffinity: "None",
		Created:         created,
		// The Service's own address, kept in this cluster.
		LocalClusterIPs: []string{"10.0.0.1"},
	}
	for _, m := range mut {
		m(&e)
	}
	return e
}

func TestCompute(t *testing.T) {
	tests := []struct {
		name   string
		ses    []*mcsv1beta1.ServiceExport
		svcs   []*corev1.Service
		slices []*discoveryv1.EndpointSlice
		want   map[exports.Key]exports.Export
		// reason and warning substrings per key
		reasons  map[exports.Key]string
		warnings map[exports.Key][]string
	}{
		{
			name:    "export needs a ServiceExport and a Service",
			ses:     []*mcsv1beta1.ServiceExport{se("ns", "foo")},
			svcs:    []*corev1.Service{svc("ns", "foo"), svc("ns", "unexported")},
			want:    map[exports.Key]exports.Export{{Namespace: "ns", Name: "foo"}: base()},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonValid},
		},
		{
			name:    "no Service is invalid",
			ses:     []*mcsv1beta1.ServiceExport{se("ns", "foo")},
			svcs:    []*corev1.Service{svc("other", "foo")},
			want:    map[exports.Key]exports.Export{},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonNoService},
		},
		{
			name:    "ExternalName is invalid",
			ses:     []*mcsv1beta1.ServiceExport{se("ns", "foo")},
			svcs:    []*corev1.Service{svc("ns", "foo", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName; s.Spec.ClusterIP = "" })},
			want:    map[exports.Key]exports.Export{},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonInvalidServiceType},
		},
		{
			name: "a Ferry mirror cannot be re-exported",
			ses:  []*mcsv1beta1.ServiceExport{se("ns", "foo")},
			svcs: []*corev1.Service{svc("ns", "foo", func(s *corev1.Service) {
				s.Labels = map[string]string{contract.LabelLink: "east", contract.LabelSourceCluster: "east"}
			})},
			want:    map[exports.Key]exports.Export{},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonImportedService},
		},
		{
			name: "a Ferry clusterset Service cannot be exported",
			ses:  []*mcsv1beta1.ServiceExport{se("ns", "foo-clusterset")},
			svcs: []*corev1.Service{svc("ns", "foo-clusterset", func(s *corev1.Service) {
				s.Labels = map[string]string{contract.LabelClusterset: "foo"}
			})},
			want:    map[exports.Key]exports.Export{},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo-clusterset"}: exports.ReasonImportedService},
		},
		{
			name: "ServiceExport being deleted has no export and no status",
			ses: []*mcsv1beta1.ServiceExport{se("ns", "foo", func(s *mcsv1beta1.ServiceExport) {
				s.DeletionTimestamp = ptr.To(metav1.Now())
			})},
			svcs:    []*corev1.Service{svc("ns", "foo")},
			want:    map[exports.Key]exports.Export{},
			reasons: map[exports.Key]string{},
		},
		{
			name: "non-TCP ports are listed and flagged as not carried; ports sorted",
			ses:  []*mcsv1beta1.ServiceExport{se("ns", "foo")},
			svcs: []*corev1.Service{svc("ns", "foo", func(s *corev1.Service) {
				s.Spec.Ports = []corev1.ServicePort{
					{Name: "grpc", Protocol: corev1.ProtocolTCP, Port: 9090, AppProtocol: ptr.To("kubernetes.io/h2c")},
					{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53},
					{Name: "http", Port: 80}, // protocol defaulted
					{Name: "sctp", Protocol: corev1.ProtocolSCTP, Port: 7},
				}
			})},
			want: map[exports.Key]exports.Export{{Namespace: "ns", Name: "foo"}: base(func(e *exports.Export) {
				e.Ports = []exports.Port{{Name: "sctp", Protocol: "SCTP", Port: 7}, {Name: "dns", Protocol: "UDP", Port: 53}, {Name: "http", Protocol: "TCP", Port: 80},
					{Name: "grpc", Protocol: "TCP", Port: 9090, AppProtocol: "kubernetes.io/h2c"}}
			})},
			reasons:  map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonValid},
			warnings: map[exports.Key][]string{{Namespace: "ns", Name: "foo"}: {"port dns: UDP 53 is listed on ServiceImports but not carried", "port sctp: SCTP 7"}},
		},
		{
			name: "only UDP ports is invalid",
			ses:  []*mcsv1beta1.ServiceExport{se("ns", "foo")},
			svcs: []*corev1.Service{svc("ns", "foo", func(s *corev1.Service) {
				s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53}}
			})},
			want:    map[exports.Key]exports.Export{},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonNoTCPPorts},
		},
		{
			name: "headless with ready hostnames, deduplicated across slices",
			ses:  []*mcsv1beta1.ServiceExport{se("ns", "foo")},
			svcs: []*corev1.Service{svc("ns", "foo", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })},
			slices: []*discoveryv1.EndpointSlice{
				slice("ns", "foo", "a", ep{ip: "10.1.0.2", host: "web-1", uid: "u1", ready: yes}, ep{ip: "10.1.0.1", host: "web-0", uid: "u0"}, ep{ip: "10.1.0.3", host: "web-2", uid: "u2", ready: no}),
				// the same pod again, as during a slice move
				slice("ns", "foo", "b", ep{ip: "10.1.0.1", host: "web-0", uid: "u0", ready: yes}),
				// and its IPv6 address (a dual-stack Service's second slice)
				withPorts(ipv6(slice("ns", "foo", "c", ep{ip: "fd00::1", host: "web-0", uid: "u0", ready: yes}))),
				slice("ns", "bar", "c", ep{ip: "10.1.0.9", host: "other", ready: yes}),
			},
			want: map[exports.Key]exports.Export{{Namespace: "ns", Name: "foo"}: base(func(e *exports.Export) {
				e.Type, e.ReadyEndpoints, e.Hostnames, e.LocalClusterIPs = exports.Headless, 2, []string{"web-0", "web-1"}, nil
				// This cluster's own pods, every address of each, for its
				// clusterset DNS; the first slice with ports gives them.
				e.LocalPods = []exports.LocalPod{{Hostname: "web-0", Addresses: []string{"10.1.0.1", "fd00::1"}}, {Hostname: "web-1", Addresses: []string{"10.1.0.2"}}}
				e.LocalPorts = []exports.Port{{Name: "http", Protocol: "TCP", Port: 8080}}
			})},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonValid},
		},
		{
			name: "headless without hostnames is exported, and the warning says how importers reach it",
			ses:  []*mcsv1beta1.ServiceExport{se("ns", "foo")},
			svcs: []*corev1.Service{svc("ns", "foo", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })},
			slices: []*discoveryv1.EndpointSlice{
				slice("ns", "foo", "a", ep{ip: "10.1.0.1", uid: "u0", ready: yes}, ep{ip: "10.1.0.2", uid: "u1", ready: yes}),
			},
			want: map[exports.Key]exports.Export{{Namespace: "ns", Name: "foo"}: base(func(e *exports.Export) {
				e.Type, e.ReadyEndpoints, e.LocalClusterIPs = exports.Headless, 2, nil
				e.LocalPods = []exports.LocalPod{{Addresses: []string{"10.1.0.1"}}, {Addresses: []string{"10.1.0.2"}}}
			})},
			reasons:  map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonValid},
			warnings: map[exports.Key][]string{{Namespace: "ns", Name: "foo"}: {"no ready endpoint has a hostname"}},
		},
		{
			name: "ClusterSetIP counts ready endpoints and carries no hostnames",
			ses:  []*mcsv1beta1.ServiceExport{se("ns", "foo")},
			svcs: []*corev1.Service{svc("ns", "foo")},
			slices: []*discoveryv1.EndpointSlice{
				slice("ns", "foo", "a", ep{ip: "10.1.0.1", host: "h", ready: yes}, ep{ip: "10.1.0.2", ready: no}, ep{ip: "10.1.0.3", ready: yes}),
				slice("other", "foo", "x", ep{ip: "10.1.0.4", ready: yes}),
			},
			want:    map[exports.Key]exports.Export{{Namespace: "ns", Name: "foo"}: base(func(e *exports.Export) { e.ReadyEndpoints = 2 })},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonValid},
		},
		{
			name: "internal traffic policy and traffic distribution are carried",
			ses:  []*mcsv1beta1.ServiceExport{se("ns", "foo")},
			svcs: []*corev1.Service{svc("ns", "foo", func(s *corev1.Service) {
				s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
				s.Spec.TrafficDistribution = ptr.To(corev1.ServiceTrafficDistributionPreferClose)
			})},
			want: map[exports.Key]exports.Export{{Namespace: "ns", Name: "foo"}: base(func(e *exports.Export) {
				e.InternalTrafficPolicy, e.TrafficDistribution = "Local", "PreferClose"
			})},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonValid},
		},
		{
			name: "session affinity ClientIP with and without timeout",
			ses:  []*mcsv1beta1.ServiceExport{se("ns", "foo"), se("ns", "bar")},
			svcs: []*corev1.Service{
				svc("ns", "foo", func(s *corev1.Service) {
					s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
					s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
				}),
				svc("ns", "bar", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }),
			},
			want: map[exports.Key]exports.Export{
				{Namespace: "ns", Name: "foo"}: base(func(e *exports.Export) { e.SessionAffinity, e.SessionAffinityTimeoutSeconds = "ClientIP", 60 }),
				{Namespace: "ns", Name: "bar"}: base(func(e *exports.Export) {
					e.Name, e.SessionAffinity, e.SessionAffinityTimeoutSeconds = "bar", "ClientIP", corev1.DefaultClientIPServiceAffinitySeconds
				}),
			},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonValid, {Namespace: "ns", Name: "bar"}: exports.ReasonValid},
		},
		{
			name: "exported labels and annotations; reserved and invalid keys dropped",
			ses: []*mcsv1beta1.ServiceExport{se("ns", "foo", func(s *mcsv1beta1.ServiceExport) {
				s.Spec.ExportedLabels = map[string]string{"team": "a", contract.LabelLink: "forged", "bad key": "x", "v": "not valid!", "app.kubernetes.io/name": "web"}
				s.Spec.ExportedAnnotations = map[string]string{"example.com/doc": "free text!", "multicluster.kubernetes.io/x": "y", "service.kubernetes.io/service-proxy-name": "none"}
			})},
			svcs: []*corev1.Service{svc("ns", "foo")},
			want: map[exports.Key]exports.Export{{Namespace: "ns", Name: "foo"}: base(func(e *exports.Export) {
				e.Labels = map[string]string{"team": "a", "app.kubernetes.io/name": "web"}
				e.Annotations = map[string]string{"example.com/doc": "free text!"}
			})},
			reasons:  map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonValid},
			warnings: map[exports.Key][]string{{Namespace: "ns", Name: "foo"}: {`"bad key" is not a valid label key`, `"ferry.dev/link" is reserved`, `"multicluster.kubernetes.io/x" is reserved`, `"service.kubernetes.io/service-proxy-name" is reserved`, `value of "v"`}},
		},
		{
			name: "oversized exported metadata is invalid",
			ses: []*mcsv1beta1.ServiceExport{se("ns", "foo", func(s *mcsv1beta1.ServiceExport) {
				s.Spec.ExportedAnnotations = map[string]string{"big": strings.Repeat("x", exports.MaxExportedMetadataBytes)}
			})},
			svcs:    []*corev1.Service{svc("ns", "foo")},
			want:    map[exports.Key]exports.Export{},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonTooLarge},
		},
		{
			name: "allowed clusters: sorted, deduplicated, invalid entries flagged and left out",
			ses: []*mcsv1beta1.ServiceExport{se("ns", "foo", func(s *mcsv1beta1.ServiceExport) {
				s.Annotations = map[string]string{contract.AnnotationAllowedClusters: " west, north ,west,Bad_Name,,"}
			})},
			svcs:     []*corev1.Service{svc("ns", "foo")},
			want:     map[exports.Key]exports.Export{{Namespace: "ns", Name: "foo"}: base(func(e *exports.Export) { e.AllowedClusters = []string{"north", "west"} })},
			reasons:  map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonValid},
			warnings: map[exports.Key][]string{{Namespace: "ns", Name: "foo"}: {`"Bad_Name"`}},
		},
		{
			name: "allowed clusters present but empty admits nobody (fails closed)",
			ses: []*mcsv1beta1.ServiceExport{se("ns", "foo", func(s *mcsv1beta1.ServiceExport) {
				s.Annotations = map[string]string{contract.AnnotationAllowedClusters: "Not A Cluster"}
			})},
			svcs:     []*corev1.Service{svc("ns", "foo")},
			want:     map[exports.Key]exports.Export{{Namespace: "ns", Name: "foo"}: base(func(e *exports.Export) { e.AllowedClusters = []string{} })},
			reasons:  map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonValid},
			warnings: map[exports.Key][]string{{Namespace: "ns", Name: "foo"}: {`"Not A Cluster"`}},
		},
		{
			name: "creation time truncated to seconds in UTC",
			ses: []*mcsv1beta1.ServiceExport{se("ns", "foo", func(s *mcsv1beta1.ServiceExport) {
				s.CreationTimestamp = metav1.NewTime(created.Add(300 * time.Millisecond).In(time.FixedZone("x", 3600)))
			})},
			svcs:    []*corev1.Service{svc("ns", "foo")},
			want:    map[exports.Key]exports.Export{{Namespace: "ns", Name: "foo"}: base()},
			reasons: map[exports.Key]string{{Namespace: "ns", Name: "foo"}: exports.ReasonValid},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, sts := Compute(tc.ses, tc.svcs, tc.slices)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d exports %v, want %d", len(got), got, len(tc.want))
			}
			for k, w := range tc.want {
				g, ok := got[k]
				if !ok {
					t.Fatalf("missing export %s", k)
				}
				if !g.Equal(&w) || !reflect.DeepEqual(g, w) {
					t.Errorf("export %s:\n got %+v\nwant %+v", k, g, w)
				}
			}
			if len(sts) != len(tc.reasons) {
				t.Fatalf("got %d statuses %+v, want %d", len(sts), sts, len(tc.reasons))
			}
			for _, st := range sts {
				if want := tc.reasons[st.Key]; st.Reason != want {
					t.Errorf("status %s: reason %q (%s), want %q", st.Key, st.Reason, st.Message, want)
				}
				if st.Valid != (st.Reason == exports.ReasonValid) {
					t.Errorf("status %s: valid %v with reason %s", st.Key, st.Valid, st.Reason)
				}
				if st.Generation != 1 {
					t.Errorf("status %s: generation %d", st.Key, st.Generation)
				}
				ws := strings.Join(st.Warnings, "\n")
				for _, w := range tc.warnings[st.Key] {
					if !strings.Contains(ws, w) {
						t.Errorf("status %s: warnings %q lack %q", st.Key, st.Warnings, w)
					}
				}
				if len(tc.warnings[st.Key]) != len(st.Warnings) {
					t.Errorf("status %s: warnings %q, want %d", st.Key, st.Warnings, len(tc.warnings[st.Key]))
				}
			}
		})
	}
}

func TestComputeDoesNotMutateInputs(t *testing.T) {
	s := svc("ns", "foo", func(s *corev1.Service) { s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "a", Port: 8}) })
	e := se("ns", "foo", func(s *mcsv1beta1.ServiceExport) { s.Spec.ExportedLabels = map[string]string{"a": "b"} })
	sl := slice("ns", "foo", "a", ep{ip: "10.0.0.1", host: "h"})
	before := []any{s.DeepCopy(), e.DeepCopy(), sl.DeepCopy()}
	got, _ := Compute([]*mcsv1beta1.ServiceExport{e}, []*corev1.Service{s}, []*discoveryv1.EndpointSlice{sl})
	exp := got[exports.Key{Namespace: "ns", Name: "foo"}]
	exp.Labels["a"] = "changed" // the export must not alias the input
	if !reflect.DeepEqual(before, []any{s, e, sl}) {
		t.Fatal("Compute modified its inputs")
	}
}

func TestHostnamesCapped(t *testing.T) {
	var eps []ep
	for i := range exports.MaxHostnames + 5 {
		eps = append(eps, ep{ip: "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250), host: "h" + strconv.Itoa(100000+i)})
	}
	got, sts := Compute([]*mcsv1beta1.ServiceExport{se("ns", "foo")},
		[]*corev1.Service{svc("ns", "foo", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })},
		[]*discoveryv1.EndpointSlice{slice("ns", "foo", "a", eps...)})
	e := got[exports.Key{Namespace: "ns", Name: "foo"}]
	if len(e.Hostnames) != exports.MaxHostnames || e.ReadyEndpoints != int32(exports.MaxHostnames+5) || len(e.LocalPods) != exports.MaxHostnames {
		t.Fatalf("hostnames %d, ready %d, local pods %d", len(e.Hostnames), e.ReadyEndpoints, len(e.LocalPods))
	}
	if len(sts[0].Warnings) != 1 {
		t.Fatalf("warnings %q", sts[0].Warnings)
	}
}

// Pods without hostnames are bounded too, for this cluster's DNS, and the
// export says so.
func TestLocalPodsCapped(t *testing.T) {
	var eps []ep
	for i := range exports.MaxHostnames + 3 {
		eps = append(eps, ep{ip: "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250)})
	}
	got, sts := Compute([]*mcsv1beta1.ServiceExport{se("ns", "foo")},
		[]*corev1.Service{svc("ns", "foo", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })},
		[]*discoveryv1.EndpointSlice{slice("ns", "foo", "a", eps...)})
	e := got[exports.Key{Namespace: "ns", Name: "foo"}]
	if len(e.LocalPods) != exports.MaxHostnames || e.ReadyEndpoints != int32(exports.MaxHostnames+3) {
		t.Fatalf("local pods %d, ready %d", len(e.LocalPods), e.ReadyEndpoints)
	}
	want := fmt.Sprintf("only the first %d of %d ready pods are in this cluster's clusterset DNS", exports.MaxHostnames, exports.MaxHostnames+3)
	if !slices.Contains(sts[0].Warnings, want) {
		t.Fatalf("warnings %q, want %q among them", sts[0].Warnings, want)
	}
}

// The cache lists slices in no fixed order: the export must not depend on
// it, or every recompute would look like a change. Past the bound, named
// pods are kept before unnamed ones, so every exported hostname is also in
// this cluster's own DNS.
func TestLocalPodsIgnoreSliceOrderAndKeepNamesFirst(t *testing.T) {
	headless := []*corev1.Service{svc("ns", "foo", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })}
	a := withPorts(slice("ns", "foo", "a", ep{ip: "10.1.0.1", host: "web-0", ready: yes}))
	b := slice("ns", "foo", "b", ep{ip: "10.1.0.2", host: "web-1", ready: yes})
	b.Ports = []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](9090)}}
	key := exports.Key{Namespace: "ns", Name: "foo"}
	ab, _ := Compute([]*mcsv1beta1.ServiceExport{se("ns", "foo")}, headless, []*discoveryv1.EndpointSlice{a, b})
	ba, _ := Compute([]*mcsv1beta1.ServiceExport{se("ns", "foo")}, headless, []*discoveryv1.EndpointSlice{b, a})
	x, y := ab[key], ba[key]
	if !x.Equal(&y) || len(x.LocalPorts) != 1 || x.LocalPorts[0].Port != 8080 {
		t.Errorf("slice order changed the export: %+v vs %+v (want ports from slice a, 8080)", x.LocalPorts, y.LocalPorts)
	}

	var eps []ep
	for i := range 10 {
		eps = append(eps, ep{ip: "10.2.0." + strconv.Itoa(i)}) // no hostname
	}
	for i := range exports.MaxHostnames {
		eps = append(eps, ep{ip: "10.3." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250), host: "h" + strconv.Itoa(1000+i)})
	}
	got, _ := Compute([]*mcsv1beta1.ServiceExport{se("ns", "foo")}, headless, []*discoveryv1.EndpointSlice{slice("ns", "foo", "a", eps...)})
	e := got[key]
	for _, p := range e.LocalPods {
		if p.Hostname == "" {
			t.Fatalf("an unnamed pod (%v) took a named one's place under the bound", p.Addresses)
		}
	}
	if len(e.LocalPods) != exports.MaxHostnames || len(e.Hostnames) != exports.MaxHostnames {
		t.Errorf("local pods %d, hostnames %d; want %d each", len(e.LocalPods), len(e.Hostnames), exports.MaxHostnames)
	}
}
