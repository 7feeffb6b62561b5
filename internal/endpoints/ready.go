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

// Ready returns the sorted, de-duplicated "ip:port" addresses of the ready
// endpoints behind Service port number port. Slices of other Services are
// ignored, so callers may pass a namespace's whole slice list.
func Ready(svc *corev1.Service, slices_ []*discoveryv1.EndpointSlice, port int32) ([]string, error) {
	name, ok := portName(svc, port)
	if !ok {
		return nil, fmt.Errorf("%s/%s port %d: %w", svc.Namespace, svc.Name, port, ErrNoSuchPort)
	}
	var out []string
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
					out = append(out, net.JoinHostPort(a, strconv.Itoa(int(*p.Port))))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
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
