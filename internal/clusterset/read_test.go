package clusterset

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/mirror"
)

// TestReadRoundTrip: what Desired writes, Read decodes into the clusters
// and egress ports the gateway routes: the contract between the controller
// and the gateway for clusterset Services.
func TestReadRoundTrip(t *testing.T) {
	st := Desired(Input{
		Mirrors: []*corev1.Service{
			mirrorOf("north", port("http", 80)),
			mirrorOf("east", port("http", 80), port("grpc", 9090)),
		},
		Gateway: gw, Ports: contract.DefaultClustersetRange(),
	})
	if len(st.Services) != 1 {
		t.Fatalf("Desired: %d Services, problems %v", len(st.Services), st.Problems)
	}
	svc := st.Services[0]
	got, problems, ok := Read(svc, contract.DefaultClustersetRange())
	if !ok || len(problems) > 0 {
		t.Fatalf("Read: ok=%v %v", ok, problems)
	}
	want := Service{Key: Key{Namespace: "shop", Service: "web"}, Clusters: []string{"east", "north"}}
	for _, p := range svc.Spec.Ports {
		want.Ports = append(want.Ports, mirror.EgressPort{Port: p.Port, Egress: p.TargetPort.IntVal})
	}
	if len(want.Ports) != 2 {
		t.Fatalf("the clusterset Service has ports %v, want the union 80, 9090", svc.Spec.Ports)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Read (-want +got):\n%s", diff)
	}
}

func TestReadRefusesWhatBreaksTheContract(t *testing.T) {
	base := func() *corev1.Service {
		st := Desired(Input{Mirrors: []*corev1.Service{mirrorOf("east", port("http", 80))}, Gateway: gw, Ports: contract.DefaultClustersetRange()})
		return st.Services[0]
	}
	if _, _, ok := Read(mirrorOf("east", port("http", 80)), contract.DefaultClustersetRange()); ok {
		t.Error("a mirror was read as a clusterset Service")
	}
	cases := []struct {
		name   string
		mutate func(*corev1.Service)
		want   string
	}{
		{"empty label", func(s *corev1.Service) { s.Labels[contract.LabelClusterset] = "" }, "empty"},
		{"also a mirror", func(s *corev1.Service) { s.Labels[contract.LabelLink] = "east" }, "carries both"},
		{"no remote service", func(s *corev1.Service) { delete(s.Annotations, contract.AnnotationRemoteService) }, "no " + contract.AnnotationRemoteService},
		{"remote service disagrees", func(s *corev1.Service) { s.Annotations[contract.AnnotationRemoteService] = "api" }, "does not match"},
		{"wrong name", func(s *corev1.Service) { s.Name = "web-elsewhere" }, "is named web-clusterset"},
	}
	for _, tc := range cases {
		s := base()
		tc.mutate(s)
		if _, problems, ok := Read(s, contract.DefaultClustersetRange()); ok || len(problems) != 1 || !strings.Contains(problems[0].Error(), tc.want) {
			t.Errorf("%s: ok=%v problems=%v, want a refusal with %q", tc.name, ok, problems, tc.want)
		}
	}
}
