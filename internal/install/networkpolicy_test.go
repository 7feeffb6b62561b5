package install

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"ferry.dev/ferry/internal/contract"
)

func findNetworkPolicy(t *testing.T, objs []client.Object, name string) *networkingv1.NetworkPolicy {
	t.Helper()
	for _, o := range objs {
		if np, ok := o.(*networkingv1.NetworkPolicy); ok && np.Name == name {
			return np
		}
	}
	t.Fatalf("no NetworkPolicy %s in the install", name)
	return nil
}

// allowed is one (port, endPort) a policy admits, and from where: "any"
// (no peer list), "pods" (every namespace's pods, never hosts), or
// "other" (anything else, which no Ferry policy has).
type allowed struct {
	port, endPort int32
	from          string
}

func allowedOf(t *testing.T, np *networkingv1.NetworkPolicy) []allowed {
	t.Helper()
	var out []allowed
	for _, r := range np.Spec.Ingress {
		from := "any"
		if len(r.From) > 0 {
			from = "other"
			if len(r.From) == 1 && r.From[0].IPBlock == nil && r.From[0].PodSelector == nil &&
				r.From[0].NamespaceSelector != nil && len(r.From[0].NamespaceSelector.MatchLabels) == 0 &&
				len(r.From[0].NamespaceSelector.MatchExpressions) == 0 {
				from = "pods"
			}
		}
		for _, p := range r.Ports {
			if p.Protocol == nil || *p.Protocol != corev1.ProtocolTCP || p.Port == nil || p.Port.Type != intstr.Int {
				t.Errorf("%s: port %+v: want a numbered TCP port", np.Name, p)
				continue
			}
			a := allowed{port: p.Port.IntVal, from: from}
			if p.EndPort != nil {
				a.endPort = *p.EndPort
			}
			out = append(out, a)
		}
	}
	return out
}

func equalAllowed(a, b []allowed) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The gateway's pods accept the tunnel port from anywhere, and the admin
// port and the egress and clusterset ranges only from the cluster's pods
// (docs/security.md, finding 3); nothing else, and egress to anywhere.
func TestGatewayNetworkPolicy(t *testing.T) {
	for _, c := range []struct {
		ports    string
		min, max int32
	}{{"", 10000, 31999}, {"56000-56999", 56000, 56999}} {
		o := testOptions(t)
		o.EgressPorts = c.ports
		objs, err := Render(o)
		if err != nil {
			t.Fatal(err)
		}
		np := findNetworkPolicy(t, objs, contract.GatewayName)
		if np.Namespace != contract.SystemNamespace || len(np.Spec.PodSelector.MatchLabels) == 0 ||
			np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "ferry-gateway" {
			t.Errorf("the policy selects %s/%v, want the gateway's pods", np.Namespace, np.Spec.PodSelector.MatchLabels)
		}
		if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress || len(np.Spec.Egress) != 0 {
			t.Errorf("policy types %v, egress %v: want Ingress only (the gateway dials its API server, peers and backends)", np.Spec.PolicyTypes, np.Spec.Egress)
		}
		cs := contract.DefaultClustersetRange()
		want := []allowed{
			{port: contract.IngressPort, from: "any"},
			{port: contract.GatewayAdminPort, from: "pods"},
			{port: c.min, endPort: c.max, from: "pods"},
			{port: cs.Min, endPort: cs.Max, from: "pods"},
		}
		if got := allowedOf(t, np); !equalAllowed(got, want) {
			t.Errorf("egress ports %q: the gateway's policy allows\n %+v\nwant\n %+v", c.ports, got, want)
		}
	}
}

// The controller listens only on its admin port: that from the cluster's
// pods, nothing else.
func TestControllerNetworkPolicy(t *testing.T) {
	objs, err := Render(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	np := findNetworkPolicy(t, objs, contract.ControllerName)
	if np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "ferry-controller" {
		t.Errorf("the policy selects %v, want the controller's pods", np.Spec.PodSelector.MatchLabels)
	}
	want := []allowed{{port: contract.ControllerAdminPort, from: "pods"}}
	if got := allowedOf(t, np); !equalAllowed(got, want) {
		t.Errorf("the controller's policy allows %+v, want %+v", got, want)
	}
}

// externalTrafficPolicy Local keeps peers' source addresses, which the
// gateway's per-address handshake limits need (finding 5), wherever the
// Service has external traffic; a ClusterIP Service may not set it.
func TestGatewayServiceExternalTrafficPolicy(t *testing.T) {
	for typ, want := range map[corev1.ServiceType]corev1.ServiceExternalTrafficPolicy{
		corev1.ServiceTypeLoadBalancer: corev1.ServiceExternalTrafficPolicyLocal,
		corev1.ServiceTypeNodePort:     corev1.ServiceExternalTrafficPolicyLocal,
		corev1.ServiceTypeClusterIP:    "",
	} {
		o := testOptions(t)
		o.GatewayServiceType = typ
		objs, err := Render(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range objs {
			if s, ok := obj.(*corev1.Service); ok && s.Name == contract.GatewayName {
				if s.Spec.ExternalTrafficPolicy != want {
					t.Errorf("%s: externalTrafficPolicy %q, want %q", typ, s.Spec.ExternalTrafficPolicy, want)
				}
			}
		}
	}
}
