package mirror

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

// A headless export whose pods have hostnames (a StatefulSet) is imported as
// one headless mirror and one host mirror per hostname (docs/headless.md):
//
//   - the host mirror <svc>-<cluster>-<host> is a ClusterIP Service whose
//     ports carry egress ports, like a mirror's; the gateway sends what
//     reaches them to that one pod, by hostname;
//   - the mirror <svc>-<cluster> is headless, and its EndpointSlice lists
//     each host mirror's ClusterIP under the pod's hostname, so cluster DNS
//     answers <host>.<svc>-<cluster>.<ns>.svc.cluster.local with an address
//     that leads to that pod alone.
//
// Clients of a headless Service connect to the port they know at the
// address DNS gave them; only a ClusterIP in front of each pod turns that
// port into the egress port that names the pod, which is why one Service
// per pod is needed.

// clashAny reports the first name of p that another holder has: an object
// this Link does not own, or a Service planned for another export of this
// Link (a host mirror "web-east-0" and the mirror of an export "web-east"
// from cluster "0" would share a name).
func (in *Input) clashAny(owned map[string]bool, planned map[string]bool, p planned) (Problem, bool) {
	names := append([]string{p.name}, p.egressNames()...)
	for _, n := range slices.Compact(names) {
		if planned[p.export.Namespace+"/"+n] {
			return Problem{Export: p.export.Key, Reason: NameClash, Object: "Service " + p.export.Namespace + "/" + n, Holder: in.Link.Name}, true
		}
		if pr, clash := in.clash(owned, p.export.Key, n); clash {
			return pr, true
		}
	}
	return Problem{}, false
}

// addHeadless adds the objects of a headless export with hostnames;
// current indexes the Link's Services by namespace/name.
func (st *State) addHeadless(in Input, p planned, alloc map[PortKey]int32, v4, v6 []string, current map[string]*corev1.Service) {
	e := p.export
	ready := e.ReadyEndpoints > 0 && in.Health == Healthy
	var podsV4, podsV6 []discoveryv1.Endpoint
	for _, h := range p.hosts {
		egress := make([]int32, len(p.ports))
		for i, port := range p.ports {
			k := PortKey{Namespace: e.Namespace, Service: h.name, Port: port.Port}
			egress[i] = alloc[k]
			st.Ports[k] = alloc[k]
		}
		st.Services = append(st.Services, buildHostService(in.Link, e, h, p.ports, egress))
		st.Slices = append(st.Slices, buildSlice(in.Link, e, h.name, p.ports, egress, discoveryv1.AddressTypeIPv4, v4, ready))
		if len(v6) > 0 {
			st.Slices = append(st.Slices, buildSlice(in.Link, e, h.name, p.ports, egress, discoveryv1.AddressTypeIPv6, v6, ready))
		}
		// Until the API server has given the host mirror an address, the
		// pod has no name here; the next pass, woken by the Service's
		// creation, lists it.
		for _, ip := range hostIPs(current[e.Namespace+"/"+h.name]) {
			ep := discoveryv1.Endpoint{
				Addresses: []string{ip.String()},
				Hostname:  ptr.To(h.hostname),
				Conditions: discoveryv1.EndpointConditions{
					Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false),
				},
			}
			if ip.Is4() {
				podsV4 = append(podsV4, ep)
			} else {
				podsV6 = append(podsV6, ep)
			}
		}
	}
	st.Services = append(st.Services, buildHeadlessService(in.Link, e, p.name, p.ports))
	st.Slices = append(st.Slices, buildPodSlice(in.Link, e, p.name, p.ports, discoveryv1.AddressTypeIPv4, podsV4))
	if len(podsV6) > 0 {
		st.Slices = append(st.Slices, buildPodSlice(in.Link, e, p.name, p.ports, discoveryv1.AddressTypeIPv6, podsV6))
	}
}

// hostIPs are the ClusterIPs the API server gave a host mirror.
func hostIPs(s *corev1.Service) []netip.Addr {
	if s == nil {
		return nil
	}
	var out []netip.Addr
	for _, v := range ClusterIPs(s) {
		if ip, err := netip.ParseAddr(v); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// buildHeadlessService is the mirror of a headless export with hostnames:
// a mirror (labels, annotations, ports) without a ClusterIP, whose ports
// hold no egress port: each pod is reached at its host mirror's address.
func buildHeadlessService(link Link, e *exports.Export, name string, ports []exports.Port) *corev1.Service {
	svc := buildService(link, e, name, ports, portNumbers(ports))
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	return svc
}

// buildHostService is the host mirror of one pod: the ownership labels, the
// remote service and hostname, and the export's ports on egress ports. It
// carries none of the export's labels or annotations: it is plumbing, and
// selectors that match the export should not match one Service per pod.
func buildHostService(link Link, e *exports.Export, h host, ports []exports.Port, egress []int32) *corev1.Service {
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: e.Namespace, Name: h.name, Labels: OwnershipLabels(link),
			Annotations: map[string]string{
				contract.AnnotationRemoteService:  e.Name,
				contract.AnnotationRemoteHostname: h.hostname,
			},
		},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, SessionAffinity: corev1.ServiceAffinityNone},
	}
	for i, p := range ports {
		sp := corev1.ServicePort{Name: p.Name, Protocol: corev1.ProtocolTCP, Port: p.Port, TargetPort: intstr.FromInt32(egress[i])}
		if p.AppProtocol != "" {
			sp.AppProtocol = ptr.To(p.AppProtocol)
		}
		svc.Spec.Ports = append(svc.Spec.Ports, sp)
	}
	return svc
}

// buildPodSlice is the headless mirror's EndpointSlice: one endpoint per
// pod, at its host mirror's address, on the exported ports.
func buildPodSlice(link Link, e *exports.Export, name string, ports []exports.Port, family discoveryv1.AddressType, eps []discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	s := buildSlice(link, e, name, ports, portNumbers(ports), family, nil, false)
	s.Endpoints = eps
	return s
}

// portNumbers are the ports' own numbers: what a headless mirror and its
// slice carry where a mirror carries egress ports.
func portNumbers(ports []exports.Port) []int32 {
	out := make([]int32, len(ports))
	for i, p := range ports {
		out[i] = p.Port
	}
	return out
}

// ClusterIPs are the addresses the API server gave a Service, none for a
// headless one or one not allocated yet.
func ClusterIPs(s *corev1.Service) []string {
	if len(s.Spec.ClusterIPs) > 0 && s.Spec.ClusterIPs[0] != corev1.ClusterIPNone {
		return slices.Clone(s.Spec.ClusterIPs)
	}
	if s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone {
		return []string{s.Spec.ClusterIP}
	}
	return nil
}

// Hostname returns the pod a host mirror stands for
// (contract.AnnotationRemoteHostname); ok is false for any other object.
func Hostname(obj metav1.Object) (hostname string, ok bool) {
	hostname, ok = obj.GetAnnotations()[contract.AnnotationRemoteHostname]
	return hostname, ok
}

// Hosted names a headless mirror by what its host mirrors share: their
// Link, namespace and remote service.
type Hosted struct{ Link, Namespace, Service string }

// HostedOf is the Hosted of a host mirror or headless mirror s. A headless
// mirror holds no port, so no port claim can vouch for it: a claimed host
// mirror with the same HostedOf does.
func HostedOf(s *corev1.Service) Hosted {
	return Hosted{Link: s.Labels[contract.LabelLink], Namespace: s.Namespace, Service: s.Annotations[contract.AnnotationRemoteService]}
}
