package endpoints

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// ErrNoSuchPort means the Service has no port with the requested number.
var ErrNoSuchPort = fmt.Errorf("service has no such port")

// ErrAmbiguousHostname means ready endpoints of more than one pod carry the
// hostname asked for. A hostname stands for one pod (a StatefulSet's web-1);
// when two claim it, either could be the wrong one, so neither is served.
var ErrAmbiguousHostname = fmt.Errorf("hostname names more than one pod")

// Ready returns the sorted, de-duplicated "ip:port" addresses of the ready
// endpoints behind Service port number port. Slices of other Services are
// ignored, so callers may pass a namespace's whole slice list.
func Ready(svc *corev1.Service, slices_ []*discoveryv1.EndpointSlice, port int32) ([]string, error) {
	var out []string
	err := eachReady(svc, slices_, port, func(_ discoveryv1.Endpoint, addr string) {
		out = append(out, addr)
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ReadyHost is Ready narrowed to the endpoints whose EndpointSlice hostname
// is hostname: the addresses of one pod of a headless Service (two on a
// dual-stack one, one per family). The same port resolution and readiness
// rules apply. An empty hostname matches nothing, never "any pod", and a
// hostname that ready endpoints of two pods carry is ErrAmbiguousHostname.
func ReadyHost(svc *corev1.Service, slices_ []*discoveryv1.EndpointSlice, port int32, hostname string) ([]string, error) {
	var out []string
	pods := map[string]bool{}
	err := eachReady(svc, slices_, port, func(ep discoveryv1.Endpoint, addr string) {
		if hostname == "" || ep.Hostname == nil || *ep.Hostname != hostname {
			return
		}
		out = append(out, addr)
		pods[podOf(ep, addr)] = true
	})
	if err != nil {
		return nil, err
	}
	if len(pods) > 1 {
		return nil, fmt.Errorf("%s/%s hostname %q: %d pods: %w", svc.Namespace, svc.Name, hostname, len(pods), ErrAmbiguousHostname)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// podOf tells endpoints apart by the pod they reference: one pod appears in
// a slice per address family, and in two slices while the controller moves
// it. An endpoint without a reference is told apart by its address.
func podOf(ep discoveryv1.Endpoint, addr string) string {
	if r := ep.TargetRef; r != nil && r.Name != "" {
		return "ref/" + r.Kind + "/" + r.Namespace + "/" + r.Name
	}
	return "addr/" + addr
}

// eachReady calls fn with every ready endpoint behind Service port number
// port and its "ip:port" address, resolved as kube-proxy does: port number
// -> port name -> the slice ports of that name, TCP, IP slices only.
func eachReady(svc *corev1.Service, slices_ []*discoveryv1.EndpointSlice, port int32, fn func(ep discoveryv1.Endpoint, addr string)) error {
	name, ok := portName(svc, port)
	if !ok {
		return fmt.Errorf("%s/%s port %d: %w", svc.Namespace, svc.Name, port, ErrNoSuchPort)
	}
	for _, s := range slices_ {
		if s.Namespace != svc.Namespace || s.Labels[discoveryv1.LabelServiceName] != svc.Name {
			continue
		}
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue // FQDN slices name hosts that only DNS could resolve
		}
		for _, p := range s.Ports {
			if p.Port == nil || deref(p.Name) != name || (p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP) {
				continue
			}
			for _, ep := range s.Endpoints {
				if !isReady(ep) {
					continue
				}
				for _, a := range ep.Addresses {
					if net.ParseIP(a) == nil {
						continue
					}
					fn(ep, net.JoinHostPort(a, strconv.Itoa(int(*p.Port))))
				}
			}
		}
	}
	return nil
}

// ReadyCount counts the ready endpoint addresses of a Service across all its
// ports, for readiness reporting.
func ReadyCount(svc *corev1.Service, slices_ []*discoveryv1.EndpointSlice) int {
	seen := map[string]bool{}
	for _, s := range slices_ {
		if s.Namespace != svc.Namespace || s.Labels[discoveryv1.LabelServiceName] != svc.Name {
			continue
		}
		for _, ep := range s.Endpoints {
			if isReady(ep) {
				for _, a := range ep.Addresses {
					seen[a] = true
				}
			}
		}
	}
	return len(seen)
}

// portName maps a Service port number to the name EndpointSlices use for it.
func portName(svc *corev1.Service, port int32) (string, bool) {
	for _, p := range svc.Spec.Ports {
		if p.Port == port && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
			return p.Name, true
		}
	}
	return "", false
}

// isReady follows the EndpointSlice API: a nil ready condition means ready,
// and a terminating endpoint takes no new connections.
func isReady(ep discoveryv1.Endpoint) bool {
	if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
		return false
	}
	return ep.Conditions.Terminating == nil || !*ep.Conditions.Terminating
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
