package clusterset

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/mirror"
)

// A headless ServiceImport has no clusterset address. DNS answers its name
// from the EndpointSlices labelled with the MCS service-name and
// source-cluster labels (KEP-1645's DNS specification), and this reconciler
// writes one per cluster (contract.PodSliceName), from the mirrors:
//
//   - a cluster whose pods have hostnames is imported as one host mirror
//     per pod (mirror's headless.go): one endpoint per pod, at its host
//     mirror's ClusterIP, under its hostname, so
//     <host>.<cluster>.<svc>.<ns>.svc.clusterset.local leads to that pod;
//   - a cluster whose pods cannot be named (a headless Service without
//     hostnames, or a ClusterSetIP export that lost the conflict to a
//     headless one) is one endpoint, its mirror's ClusterIP, behind which
//     the gateways balance over that cluster's pods;
//   - this cluster's own headless export lists its ready pods themselves,
//     at their own addresses and ports (exports.Export.LocalPods), named or
//     not: a pod here is reached without a gateway; its own ClusterSetIP
//     export (which lost the type conflict) is one endpoint, its Service's
//     ClusterIP, as a remote cluster's mirror is.

// addHeadless adds the objects of a headless clusterset service.
func (st *State) addHeadless(p plan, foreign func(kind, namespace, name string) bool) {
	var slicesOut []*discoveryv1.EndpointSlice
	var clusters []string
	for _, s := range p.srcs {
		clusters = append(clusters, s.cluster)
		var eps []discoveryv1.Endpoint
		if len(s.hosts) > 0 || (s.local && s.headless) {
			for _, h := range s.hosts {
				for _, ip := range h.ips {
					eps = append(eps, podEndpoint(ip, h.hostname, h.ready))
				}
			}
		} else {
			for _, ip := range mirror.ClusterIPs(s.svc) {
				eps = append(eps, podEndpoint(ip, "", s.ready))
			}
		}
		v4, v6 := byFamily(eps)
		slicesOut = append(slicesOut, buildPodSlice(p.key, s, discoveryv1.AddressTypeIPv4, v4))
		if len(v6) > 0 {
			slicesOut = append(slicesOut, buildPodSlice(p.key, s, discoveryv1.AddressTypeIPv6, v6))
		}
	}
	if foreign != nil {
		for _, sl := range slicesOut {
			if foreign(KindEndpointSlice, sl.Namespace, sl.Name) {
				st.Problems = append(st.Problems, Problem{Key: p.key, Reason: NameTaken, Object: KindEndpointSlice + " " + sl.Namespace + "/" + sl.Name})
				return
			}
		}
	}
	st.Slices = append(st.Slices, slicesOut...)
	st.Imports = append(st.Imports, buildImport(p.key, p.importPorts, clusters, winner(p.srcs), nil))
}

func podEndpoint(ip, hostname string, ready bool) discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)},
	}
	if hostname != "" {
		ep.Hostname = ptr.To(hostname)
	}
	return ep
}

// byFamily splits endpoints of one address each by that address's family.
func byFamily(eps []discoveryv1.Endpoint) (v4, v6 []discoveryv1.Endpoint) {
	for _, ep := range eps {
		if ip, err := netip.ParseAddr(ep.Addresses[0]); err == nil && ip.Unmap().Is4() {
			v4 = append(v4, ep)
		} else if err == nil {
			v6 = append(v6, ep)
		}
	}
	return v4, v6
}

// buildPodSlice is one cluster's MCS EndpointSlice of a headless service,
// on that cluster's ports: at a remote cluster's addresses (ClusterIPs, which
// translate them) the exported TCP ones, and at this cluster's pods their
// own.
func buildPodSlice(k Key, s source, family discoveryv1.AddressType, eps []discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	l := labels(k.Service)
	l[mcsv1beta1.LabelServiceName] = k.Service
	l[mcsv1beta1.LabelSourceCluster] = s.cluster
	l[discoveryv1.LabelManagedBy] = contract.ManagedBy
	sl := &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: k.Namespace, Name: contract.PodSliceName(k.Service, s.cluster, family == discoveryv1.AddressTypeIPv6), Labels: l,
		},
		AddressType: family,
		Endpoints:   eps,
	}
	if s.local && s.headless {
		for _, p := range s.podPorts {
			ep := discoveryv1.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(corev1.Protocol(p.Protocol)), Port: ptr.To(p.Port)}
			if p.AppProtocol != "" {
				ep.AppProtocol = ptr.To(p.AppProtocol)
			}
			sl.Ports = append(sl.Ports, ep)
		}
		return sl
	}
	for _, p := range s.svc.Spec.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		ep := discoveryv1.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(p.Port)}
		if p.AppProtocol != nil {
			ep.AppProtocol = ptr.To(*p.AppProtocol)
		}
		sl.Ports = append(sl.Ports, ep)
	}
	return sl
}

// sortState orders the objects by namespace and name, as State promises.
func sortState(st *State) {
	byName := func(a, b metav1.Object) bool {
		if a.GetNamespace() != b.GetNamespace() {
			return a.GetNamespace() < b.GetNamespace()
		}
		return a.GetName() < b.GetName()
	}
	sort.SliceStable(st.Imports, func(i, j int) bool { return byName(st.Imports[i], st.Imports[j]) })
	sort.SliceStable(st.Services, func(i, j int) bool { return byName(st.Services[i], st.Services[j]) })
	sort.SliceStable(st.Slices, func(i, j int) bool { return byName(st.Slices[i], st.Slices[j]) })
}
