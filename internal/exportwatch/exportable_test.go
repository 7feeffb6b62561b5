package exportwatch

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// TestExportable: the one rule behind both the Valid condition and
// `ferry export`'s refusal, with the words both show.
func TestExportable(t *testing.T) {
	ports := func(n int, proto corev1.Protocol) []corev1.ServicePort {
		out := make([]corev1.ServicePort, n)
		for i := range out {
			out[i] = corev1.ServicePort{Port: int32(1000 + i), Protocol: proto}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		svc     *corev1.Service
		reason  string // "" for exportable
		message string
	}{
		{"a ClusterIP Service with a TCP port", svc("ns", "foo"), "", ""},
		{"headless", svc("ns", "foo", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }), "", ""},
		{"protocol left to the API server's default", svc("ns", "foo", func(s *corev1.Service) { s.Spec.Ports = ports(1, "") }), "", ""},
		{"UDP beside TCP is no refusal", svc("ns", "foo", func(s *corev1.Service) {
			s.Spec.Ports = append(ports(1, corev1.ProtocolUDP), ports(1, corev1.ProtocolTCP)...)
		}), "", ""},
		{"exactly MaxPorts", svc("ns", "foo", func(s *corev1.Service) { s.Spec.Ports = ports(exports.MaxPorts, corev1.ProtocolTCP) }), "", ""},

		{"no Service", nil, exports.ReasonNoService, "Service ns/foo does not exist"},
		{"a Service being deleted", svc("ns", "foo", func(s *corev1.Service) { s.DeletionTimestamp = ptr.To(metav1.Now()) }),
			exports.ReasonNoService, "Service ns/foo is being deleted"},
		{"ExternalName", svc("ns", "foo", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIP = corev1.ServiceTypeExternalName, "db.example.internal", ""
		}), exports.ReasonInvalidServiceType,
			`Service ns/foo is of type ExternalName (an alias of "db.example.internal"), with no endpoints of its own for a gateway to carry traffic to: export a Service with a selector or EndpointSlices instead, or have the other clusters use "db.example.internal" directly`},
		{"a mirror", svc("ns", "foo", func(s *corev1.Service) {
			s.Labels = map[string]string{contract.LabelLink: "east", contract.LabelSourceCluster: "east"}
		}), exports.ReasonImportedService, `Service ns/foo is a mirror that Ferry imports from cluster "east": export the original Service in east instead`},
		{"a clusterset Service", svc("ns", "foo-clusterset", func(s *corev1.Service) {
			s.Labels = map[string]string{contract.LabelClusterset: "foo"}
		}), exports.ReasonImportedService, "Service ns/foo-clusterset is Ferry's clusterset Service of ns/foo: export ns/foo itself in each cluster that serves it"},
		{"no ports", svc("ns", "foo", func(s *corev1.Service) { s.Spec.Ports = nil }), exports.ReasonNoTCPPorts,
			"Service ns/foo has no ports, and Ferry's gateways carry TCP ports only: add a TCP port to the Service (`kubectl -n ns edit svc foo`), then export it"},
		{"UDP and SCTP only", svc("ns", "foo", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 9, Protocol: corev1.ProtocolSCTP}}
		}), exports.ReasonNoTCPPorts, "Service ns/foo has no TCP port (only UDP 53, SCTP 9), and Ferry's gateways carry TCP only: add a TCP port to the Service to export it"},
		{"one port over MaxPorts", svc("ns", "foo", func(s *corev1.Service) { s.Spec.Ports = ports(exports.MaxPorts+1, corev1.ProtocolTCP) }),
			exports.ReasonTooLarge, "Service ns/foo has 129 ports, and at most 128 can be exported: split it into Services with fewer ports"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := exports.Key{Namespace: "ns", Name: "foo"}
			if tc.svc != nil {
				k = exports.Key{Namespace: tc.svc.Namespace, Name: tc.svc.Name}
			}
			r := Exportable(tc.svc)
			switch {
			case tc.reason == "" && r != nil:
				t.Fatalf("refused: %s (%s)", r.Message(k), r.Reason)
			case tc.reason == "":
				return
			case r == nil:
				t.Fatalf("exportable; want %s", tc.reason)
			}
			if got := r.Message(k); r.Reason != tc.reason || got != tc.message {
				t.Errorf("got %s: %q\nwant %s: %q", r.Reason, got, tc.reason, tc.message)
			}
		})
	}
}
