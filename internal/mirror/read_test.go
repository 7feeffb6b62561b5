package mirror

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// roundTripExports covers every field a mirror carries: several ports with
// and without appProtocol, exported labels and annotations, ClientIP
// affinity, a Headless type with and without hostnames, a creation time,
// and an export without ready endpoints.
func roundTripExports() []exports.Export {
	a := export("ns", "a", 80, 443)
	a.Labels = map[string]string{"app": "a"}
	a.Annotations = map[string]string{"team": "x"}
	a.Ports[1].AppProtocol = "https"
	// Listed, not carried: the mirror opens nothing for it.
	a.Ports = append(a.Ports, exports.Port{Name: "dns", Protocol: "UDP", Port: 443})
	a.SessionAffinity = "None"
	b := export("ns", "b", 5432)
	b.Type = exports.Headless
	b.SessionAffinity = "None"
	b.ReadyEndpoints = 0
	c := export("other", "c", 9000)
	c.ReadyEndpoints = 7
	c.SessionAffinity = "ClientIP"
	c.SessionAffinityTimeoutSeconds = 60
	c.Created = time.Date(2026, 12, 3, 18, 0, 5, 0, time.UTC)
	c.InternalTrafficPolicy, c.TrafficDistribution = "Cluster", "PreferClose"
	d := export("ns", "web", 80)
	d.Type = exports.Headless
	d.SessionAffinity = "None"
	d.Hostnames = []string{"web-0", "web-1"}
	return []exports.Export{a, b, c, d}
}

// TestReadRoundTrip: what Desired writes, Read decodes back into the
// export it came from and the egress ports Desired allocated. This is the
// contract between the controller (writer) and the gateway (reader).
func TestReadRoundTrip(t *testing.T) {
	es := roundTripExports()[:3] // the headless one: TestReadHostMirror
	st := Desired(input(es...))
	if len(st.Services) != len(es) {
		t.Fatalf("Desired wrote %d mirrors for %d exports: %+v", len(st.Services), len(es), st.Problems)
	}
	for i, s := range applied(st).Services {
		got, problems, ok := Read(s, contract.DefaultEgressRange())
		if !ok || len(problems) > 0 {
			t.Fatalf("Read(%s): ok=%v %v", s.Name, ok, problems)
		}
		want := Mirror{Link: testLink.Name, Cluster: testLink.Cluster, Export: es[i].Key, Type: es[i].Type,
			ReadyEndpoints: es[i].ReadyEndpoints, HasReadyEndpoints: true}
		for _, p := range es[i].Ports {
			if !p.Carried() {
				continue
			}
			want.Ports = append(want.Ports, EgressPort{Port: p.Port, Egress: st.Ports[PortKey{Namespace: s.Namespace, Service: s.Name, Port: p.Port}]})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Read(%s) (-want +got):\n%s", s.Name, diff)
		}
	}
}

// TestRecoverGivesTheExportsBack: Recover returns the exports Desired was
// given, in every field a mirror records, the ready count, creation time
// and hostnames included. The rest is documented as not recorded: allowed
// clusters (enforced by the exporter).
func TestRecoverGivesTheExportsBack(t *testing.T) {
	es := roundTripExports()
	slices.SortFunc(es, func(a, b exports.Export) int { return exports.CompareKeys(a.Key, b.Key) })
	got := Recover(applied(Desired(input(es...))))
	opts := cmp.Options{
		cmpopts.IgnoreFields(exports.Export{}, "AllowedClusters"),
		cmpopts.EquateEmpty(),
	}
	if diff := cmp.Diff(es, got, opts...); diff != "" {
		t.Errorf("Recover (-want +got):\n%s", diff)
	}
}

func TestReadRefusesWhatBreaksTheContract(t *testing.T) {
	base := func() *corev1.Service {
		return applied(Desired(input(export("ns", "a", 80)))).Services[0]
	}
	if _, _, ok := Read(&corev1.Service{}, contract.DefaultEgressRange()); ok {
		t.Error("a Service without ownership labels was read as a mirror")
	}
	cases := []struct {
		name   string
		mutate func(*corev1.Service)
		ok     bool
		want   string
	}{
		{"no remote-service annotation", func(s *corev1.Service) { delete(s.Annotations, contract.AnnotationRemoteService) }, false, "no " + contract.AnnotationRemoteService},
		{"unknown type", func(s *corev1.Service) { s.Annotations[contract.AnnotationExportType] = "ExternalName" }, false, "is not an export type"},
		{"egress port outside the range", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort.IntVal = 80 }, true, "is not an egress port in"},
		{"UDP port", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = corev1.ProtocolUDP }, true, "is not an egress port in"},
		{"negative ready count", func(s *corev1.Service) { s.Annotations[contract.AnnotationReadyEndpoints] = "-1" }, true, "is not a count of ready endpoints"},
		{"huge ready count", func(s *corev1.Service) { s.Annotations[contract.AnnotationReadyEndpoints] = "99999999" }, true, "is not a count of ready endpoints"},
		{"non-canonical ready count", func(s *corev1.Service) { s.Annotations[contract.AnnotationReadyEndpoints] = "07" }, true, "is not a count of ready endpoints"},
	}
	for _, tc := range cases {
		s := base()
		tc.mutate(s)
		m, problems, ok := Read(s, contract.DefaultEgressRange())
		if ok != tc.ok || len(problems) != 1 || !strings.Contains(problems[0].Error(), tc.want) {
			t.Errorf("%s: ok=%v problems=%v, want ok=%v and %q", tc.name, ok, problems, tc.ok, tc.want)
		}
		if ok && strings.Contains(tc.want, "ready endpoints") {
			if m.HasReadyEndpoints || len(m.Ports) != 1 {
				t.Errorf("%s: read as %+v, want no count and the port kept", tc.name, m)
			}
			continue
		}
		if ok && len(m.Ports) != 0 {
			t.Errorf("%s: the broken port was kept: %+v", tc.name, m.Ports)
		}
	}
}
