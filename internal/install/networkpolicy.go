package install

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/contract"
)

// fromAnywhere admits a port from any source: the peer list is empty.
var fromAnywhere []networkingv1.NetworkPolicyPeer

// fromClusterPods admits a port from every pod of every namespace and from
// nothing else: a namespaceSelector without a podSelector matches no
// hostNetwork pod, node or outside host (docs/security.md, finding 3).
func fromClusterPods() []networkingv1.NetworkPolicyPeer {
	return []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}
}

func tcpPorts(first, last int32) []networkingv1.NetworkPolicyPort {
	p := networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(first))}
	if last != first {
		p.EndPort = ptr.To(last)
	}
	return []networkingv1.NetworkPolicyPort{p}
}

func networkPolicy(name, component string, rules []networkingv1.NetworkPolicyIngressRule) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: meta(name, contract.SystemNamespace, component),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: selector(component)},
			// Ingress only: the daemons dial their API server, remote
			// gateways and backends, which an install cannot enumerate.
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     rules,
		},
	}
}

// gatewayNetworkPolicy: the tunnel port is the one port other clusters
// reach, so it is open to all; the admin port (probes, metrics) and the
// egress ports are for this cluster's pods. Kubelet probes come from the
// pod's own node, which NetworkPolicy implementations do not block. The
// gateway also checks each egress caller's namespace itself
// (--egress-callers), because a policy cannot say which namespace may use
// which port, and not every cluster enforces policies.
func gatewayNetworkPolicy(s spec) *networkingv1.NetworkPolicy {
	cs := contract.DefaultClustersetRange()
	return networkPolicy(contract.GatewayName, "gateway", []networkingv1.NetworkPolicyIngressRule{
		{Ports: tcpPorts(contract.IngressPort, contract.IngressPort), From: fromAnywhere},
		{Ports: tcpPorts(contract.GatewayAdminPort, contract.GatewayAdminPort), From: fromClusterPods()},
		{Ports: tcpPorts(s.egressMin, s.egressMax), From: fromClusterPods()},
		{Ports: tcpPorts(cs.Min, cs.Max), From: fromClusterPods()},
	})
}

// controllerNetworkPolicy: the controller serves nothing but its admin
// port; the policy keeps everything else closed should it ever listen on
// more.
func controllerNetworkPolicy() *networkingv1.NetworkPolicy {
	return networkPolicy(contract.ControllerName, "controller", []networkingv1.NetworkPolicyIngressRule{
		{Ports: tcpPorts(contract.ControllerAdminPort, contract.ControllerAdminPort), From: fromClusterPods()},
	})
}
