package endpoints

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func svc(ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "foo"}, Spec: corev1.ServiceSpec{Ports: ports}}
}

func slice(name, service string, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: at,
		Ports:       ports,
		Endpoints:   eps,
	}
}

func ep(ip string, ready, terminating *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ready, Terminating: terminating}}
}

func port(name string, p int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Port: ptr.To(p), Protocol: ptr.To(corev1.ProtocolTCP)}
}

func TestReady(t *testing.T) {
	http := corev1.ServicePort{Name: "http", Port: 80}
	grpc := corev1.ServicePort{Name: "grpc", Port: 9000}
	yes, no := ptr.To(true), ptr.To(false)
	cases := []struct {
		name   string
		svc    *corev1.Service
		slices []*discoveryv1.EndpointSlice
		port   int32
		want   []string
		err    error
	}{
		{
			name:   "ready endpoints of the named port",
			svc:    svc(http, grpc),
			slices: []*discoveryv1.EndpointSlice{slice("a", "foo", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080), port("grpc", 9090)}, ep("198.18.1.2", yes, no), ep("198.18.1.3", nil, nil))},
			port:   80,
			want:   []string{"198.18.1.2:8080", "198.18.1.3:8080"},
		},
		{
			name:   "not ready and terminating excluded",
			svc:    svc(http),
			slices: []*discoveryv1.EndpointSlice{slice("a", "foo", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080)}, ep("198.18.1.2", no, nil), ep("198.18.1.3", yes, yes), ep("198.18.1.4", yes, no))},
			port:   80,
			want:   []string{"198.18.1.4:8080"},
		},
		{
			name: "other services' slices ignored, duplicates merged across slices",
			svc:  svc(http),
			slices: []*discoveryv1.EndpointSlice{
				slice("a", "foo", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080)}, ep("198.18.1.2", yes, nil)),
				slice("b", "foo", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080)}, ep("198.18.1.2", yes, nil)),
				slice("c", "bar", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080)}, ep("198.18.9.9", yes, nil)),
			},
			port: 80,
			want: []string{"198.18.1.2:8080"},
		},
		{
			name:   "FQDN slices and garbage addresses ignored",
			svc:    svc(http),
			slices: []*discoveryv1.EndpointSlice{slice("a", "foo", discoveryv1.AddressTypeFQDN, []discoveryv1.EndpointPort{port("http", 8080)}, ep("evil.example", yes, nil)), slice("b", "foo", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("http", 8080)}, ep("not-an-ip", yes, nil))},
			port:   80,
			want:   nil,
		},
		{
			name:   "unnamed single port",
			svc:    svc(corev1.ServicePort{Port: 80}),
			slices: []*discoveryv1.EndpointSlice{slice("a", "foo", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{port("", 8080)}, ep("198.18.1.2", yes, nil))},
			port:   80,
			want:   []string{"198.18.1.2:8080"},
		},
		{
			name: "unknown port",
			svc:  svc(http),
			port: 81,
			err:  ErrNoSuchPort,
		},
		{
			name: "UDP port is not carried",
			svc:  svc(corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}),
			port: 53,
			err:  ErrNoSuchPort,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Ready(tc.svc, tc.slices, tc.port)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Ready = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadyCount(t *testing.T) {
	yes, no := ptr.To(true), ptr.To(false)
	s := svc(corev1.ServicePort{Name: "http", Port: 80})
	got := ReadyCount(s, []*discoveryv1.EndpointSlice{
		slice("a", "foo", discoveryv1.AddressTypeIPv4, nil, ep("198.18.1.2", yes, nil), ep("198.18.1.3", no, nil)),
		slice("b", "foo", discoveryv1.AddressTypeIPv4, nil, ep("198.18.1.2", yes, nil)),
		slice("c", "bar", discoveryv1.AddressTypeIPv4, nil, ep("198.18.1.4", yes, nil)),
	})
	if got != 1 {
		t.Fatalf("ReadyCount = %d, want 1", got)
	}
}

// hostEP is an endpoint of pod with its EndpointSlice hostname, as the
// EndpointSlice controller writes it for a headless Service's pod.
func hostEP(ip, hostname, pod string, ready, terminating *bool) discoveryv1.Endpoint {
	e := ep(ip, ready, terminating)
	e.Hostname = ptr.To(hostname)
	e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: pod}
	return e
}

func TestReadyHost(t *testing.T) {
	http := corev1.ServicePort{Name: "http", Port: 80}
	grpc := corev1.ServicePort{Name: "grpc", Port: 9000}
	yes, no := ptr.To(true), ptr.To(false)
	v4, v6 := discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6
	ports := []discoveryv1.EndpointPort{port("http", 8080), port("grpc", 9090)}
	web := func(i int, ready, terminating *bool) discoveryv1.Endpoint {
		name := fmt.Sprintf("web-%d", i)
		return hostEP(fmt.Sprintf("198.18.1.%d", i), name, name, ready, terminating)
	}
	cases := []struct {
		name     string
		slices   []*discoveryv1.EndpointSlice
		port     int32
		hostname string
		want     []string
		err      error
	}{
		{
			name:     "the one pod of three",
			slices:   []*discoveryv1.EndpointSlice{slice("a", "foo", v4, ports, web(0, yes, no), web(1, yes, no), web(2, nil, nil))},
			port:     80,
			hostname: "web-1",
			want:     []string{"198.18.1.1:8080"},
		},
		{
			name:     "port name mapping: the Service port, not the target port",
			slices:   []*discoveryv1.EndpointSlice{slice("a", "foo", v4, ports, web(0, yes, no), web(1, yes, no))},
			port:     9000,
			hostname: "web-1",
			want:     []string{"198.18.1.1:9090"},
		},
		{
			name:     "not ready: nothing, never another pod",
			slices:   []*discoveryv1.EndpointSlice{slice("a", "foo", v4, ports, web(0, yes, no), web(1, no, no), web(2, yes, no))},
			port:     80,
			hostname: "web-1",
		},
		{
			name:     "terminating: nothing",
			slices:   []*discoveryv1.EndpointSlice{slice("a", "foo", v4, ports, web(0, yes, no), web(1, yes, yes))},
			port:     80,
			hostname: "web-1",
		},
		{
			name: "a terminating pod and its ready successor: the successor",
			slices: []*discoveryv1.EndpointSlice{slice("a", "foo", v4, ports,
				hostEP("198.18.1.10", "web-1", "web-1", no, yes), hostEP("198.18.1.11", "web-1", "web-1", yes, no))},
			port:     80,
			hostname: "web-1",
			want:     []string{"198.18.1.11:8080"},
		},
		{
			name: "one pod in two slices (the controller moving it): one address",
			slices: []*discoveryv1.EndpointSlice{
				slice("a", "foo", v4, ports, web(0, yes, no), web(1, yes, no)),
				slice("b", "foo", v4, ports, web(1, yes, no)),
			},
			port:     80,
			hostname: "web-1",
			want:     []string{"198.18.1.1:8080"},
		},
		{
			name: "dual stack: both families of the one pod",
			slices: []*discoveryv1.EndpointSlice{
				slice("a", "foo", v4, ports, web(0, yes, no), web(1, yes, no)),
				slice("b", "foo", v6, ports, hostEP("fd00::10", "web-0", "web-0", yes, no), hostEP("fd00::11", "web-1", "web-1", yes, no)),
			},
			port:     80,
			hostname: "web-1",
			want:     []string{"198.18.1.1:8080", "[fd00::11]:8080"},
		},
		{
			name:     "unknown hostname",
			slices:   []*discoveryv1.EndpointSlice{slice("a", "foo", v4, ports, web(0, yes, no))},
			port:     80,
			hostname: "web-9",
		},
		{
			name:     "an empty hostname matches nothing, not the endpoints without one",
			slices:   []*discoveryv1.EndpointSlice{slice("a", "foo", v4, ports, ep("198.18.1.5", yes, no), hostEP("198.18.1.6", "", "p", yes, no))},
			port:     80,
			hostname: "",
		},
		{
			name:     "the hostname is compared exactly",
			slices:   []*discoveryv1.EndpointSlice{slice("a", "foo", v4, ports, hostEP("198.18.1.5", "Web-1", "x", yes, no), hostEP("198.18.1.6", "web-1.foo", "y", yes, no))},
			port:     80,
			hostname: "web-1",
		},
		{
			name: "another Service's pod of that hostname is not this one",
			slices: []*discoveryv1.EndpointSlice{
				slice("a", "foo", v4, ports, web(0, yes, no)),
				slice("c", "bar", v4, ports, web(1, yes, no)),
			},
			port:     80,
			hostname: "web-1",
		},
		{
			name:     "FQDN slices are not dialed",
			slices:   []*discoveryv1.EndpointSlice{slice("a", "foo", discoveryv1.AddressTypeFQDN, ports, hostEP("web-1.example", "web-1", "web-1", yes, no))},
			port:     80,
			hostname: "web-1",
		},
		{
			name:     "two pods claim the hostname",
			slices:   []*discoveryv1.EndpointSlice{slice("a", "foo", v4, ports, hostEP("198.18.1.1", "web-1", "web-1", yes, no), hostEP("198.18.1.9", "web-1", "impostor", yes, no))},
			port:     80,
			hostname: "web-1",
			err:      ErrAmbiguousHostname,
		},
		{
			name:     "a not-ready second claimant does not make it ambiguous",
			slices:   []*discoveryv1.EndpointSlice{slice("a", "foo", v4, ports, hostEP("198.18.1.1", "web-1", "web-1", yes, no), hostEP("198.18.1.9", "web-1", "impostor", no, no))},
			port:     80,
			hostname: "web-1",
			want:     []string{"198.18.1.1:8080"},
		},
		{
			name:     "unknown port",
			slices:   []*discoveryv1.EndpointSlice{slice("a", "foo", v4, ports, web(1, yes, no))},
			port:     81,
			hostname: "web-1",
			err:      ErrNoSuchPort,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadyHost(svc(http, grpc), tc.slices, tc.port, tc.hostname)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ReadyHost = %v, want %v", got, tc.want)
			}
		})
	}
}
