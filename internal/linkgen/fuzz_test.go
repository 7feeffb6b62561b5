package linkgen

import (
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// FuzzAddresses reads the gateway addresses a user passes
// (--gateway-address) or a LoadBalancer's status reports. Every address it
// returns is host:port with a port, because the importer dials them as
// they are.
func FuzzAddresses(f *testing.F) {
	f.Add("198.18.0.10", "gw.east.example", "")
	f.Add("[fd00::1]:4143", "", "198.18.0.11")
	f.Add("host:", "::1", "")
	f.Fuzz(func(t *testing.T, override, lbHost, lbIP string) {
		svc := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Name: "ingress", Port: 4143}}}}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbIP, Hostname: lbHost}}
		var ov []string
		if override != "" {
			ov = []string{override}
		}
		got, err := addresses(svc, ov)
		if err != nil {
			return
		}
		for _, a := range got {
			if _, p, err := net.SplitHostPort(a); err != nil || p == "" {
				t.Fatalf("address %q is not host:port (override %q, lb %q/%q)", a, override, lbHost, lbIP)
			}
		}
	})
}
