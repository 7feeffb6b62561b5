package endpoints

import (
	"errors"
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
