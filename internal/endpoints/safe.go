package endpoints

import (
	"context"
	"net"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The gateway dials what EndpointSlices list, on behalf of another cluster.
// Anyone who may write an EndpointSlice could point it anywhere the
// gateway can reach (the CVE-2021-25740 class), so the gateway's Index
// keeps only what a Service's real backends look like.

// EndpointSliceControllerName is the managed-by value of the slices that
// kube-controller-manager derives from a Service's selector.
const EndpointSliceControllerName = "endpointslice-controller.k8s.io"

// Trusted reports whether the gateway may dial the endpoints of s: a slice
// the EndpointSlice controller manages, or one whose every endpoint
// references a Pod (as a controller that manages pods writes it).
func Trusted(s *discoveryv1.EndpointSlice) bool {
	if s.Labels[discoveryv1.LabelManagedBy] == EndpointSliceControllerName {
		return true
	}
	if len(s.Endpoints) == 0 {
		return false
	}
	for _, ep := range s.Endpoints {
		if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" || ep.TargetRef.Name == "" {
			return false
		}
	}
	return true
}

// Forbidden reports whether the gateway must never dial ip, wherever it
// came from: loopback (the gateway's own pod), link-local (cloud metadata
// at 169.254.169.254, fe80::), unspecified and multicast addresses.
func Forbidden(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsValid() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified()
}

// apiServerAddrs are the addresses of the cluster's API server as the
// cluster publishes them: the default/kubernetes Service's cluster IPs and
// its endpoints. A read error yields what could be read; the addresses
// that matter most (the Service's) come from one Get.
func apiServerAddrs(ctx context.Context, r client.Reader, field string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	var svc corev1.Service
	if r.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kubernetes"}, &svc) == nil {
		for _, s := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
			if ip, err := netip.ParseAddr(s); err == nil {
				out[ip.Unmap()] = true
			}
		}
	}
	var sl discoveryv1.EndpointSliceList
	if r.List(ctx, &sl, client.InNamespace("default"), client.MatchingFields{field: "kubernetes"}, client.UnsafeDisableDeepCopy) == nil {
		for _, s := range sl.Items {
			for _, ep := range s.Endpoints {
				for _, a := range ep.Addresses {
					if ip, err := netip.ParseAddr(a); err == nil {
						out[ip.Unmap()] = true
					}
				}
			}
		}
	}
	return out
}

// safe keeps the "ip:port" addresses the gateway may dial.
func safe(addrs []string, apiServer map[netip.Addr]bool) []string {
	out := addrs[:0:0]
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || Forbidden(ip) || apiServer[ip.Unmap()] {
			continue
		}
		out = append(out, a)
	}
	return out
}
