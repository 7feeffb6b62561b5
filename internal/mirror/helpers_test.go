package mirror

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"ferry.dev/ferry/internal/contract"
	"ferry.dev/ferry/internal/exports"
)

var testLink = Link{Name: "east", Cluster: "east"}

func export(ns, name string, ports ...int32) exports.Export {
	e := exports.Export{Key: exports.Key{Namespace: ns, Name: name}, Type: exports.ClusterSetIP, ReadyEndpoints: 1}
	for _, p := range ports {
		e.Ports = append(e.Ports, exports.Port{Name: "p" + itoa(p), Protocol: "TCP", Port: p})
	}
	return e
}

func itoa(p int32) string {
	if p == 0 {
		return "0"
	}
	var b []byte
	for ; p > 0; p /= 10 {
		b = append([]byte{byte('0' + p%10)}, b...)
	}
	return string(b)
}

func allNamespaces(string) bool { return true }

// mapLookup is a Lookup over fixed objects.
type mapLookup map[string]metav1.Object

func (m mapLookup) Service(ns, name string) metav1.Object { return m["Service/"+ns+"/"+name] }
func (m mapLookup) EndpointSlice(ns, name string) metav1.Object {
	return m["EndpointSlice/"+ns+"/"+name]
}

func input(es ...exports.Export) Input {
	return Input{
		Link: testLink, Exports: es, Gateway: []string{"10.0.0.2", "10.0.0.1"}, Health: Healthy,
		NamespaceExists: allNamespaces, Ports: contract.DefaultEgressRange(),
	}
}

// applied turns a desired state into "what the API holds after it was
// applied": copies with the fields the API server defaults filled in.
func applied(st State) Objects {
	var o Objects
	for i, s := range st.Services {
		c := s.DeepCopy()
		c.UID, c.ResourceVersion = types.UID("uid-"+c.Name), "1"
		if c.Spec.ClusterIP != corev1.ClusterIPNone {
			ip := fmt.Sprintf("10.96.0.%d", 10+i)
			c.Spec.ClusterIP, c.Spec.ClusterIPs = ip, []string{ip}
		}
		c.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		o.Services = append(o.Services, c)
	}
	for _, s := range st.Slices {
		c := s.DeepCopy()
		c.ResourceVersion = "1"
		o.Slices = append(o.Slices, c)
	}
	return o
}

func readyOf(s *discoveryv1.EndpointSlice) []bool {
	var out []bool
	for _, ep := range s.Endpoints {
		out = append(out, *ep.Conditions.Ready)
	}
	return out
}
