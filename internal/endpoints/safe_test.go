package endpoints

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestForbidden(t *testing.T) {
	for addr, want := range map[string]bool{
		"198.18.1.10": false, "10.1.2.3": false, "fd00::5": false,
		"127.0.0.1": true, "127.9.9.9": true, "::1": true, // the gateway's own pod
		"169.254.169.254": true, "fe80::1": true, // cloud metadata, link-local
		"0.0.0.0": true, "::": true, "224.0.0.1": true, "ff02::1": true,
		"::ffff:127.0.0.1": true, "::ffff:169.254.169.254": true, // mapped forms too
	} {
		if got := Forbidden(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Forbidden(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestTrusted(t *testing.T) {
	pod := &corev1.ObjectReference{Kind: "Pod", Name: "web-0"}
	node := &corev1.ObjectReference{Kind: "Node", Name: "n1"}
	slice := func(managedBy string, refs ...*corev1.ObjectReference) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{}}}
		if managedBy != "" {
			s.Labels[discoveryv1.LabelManagedBy] = managedBy
		}
		for _, r := range refs {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{"198.18.1.10"}, TargetRef: r})
		}
		return s
	}
	cases := []struct {
		name string
		s    *discoveryv1.EndpointSlice
		want bool
	}{
		{"the EndpointSlice controller's", slice(EndpointSliceControllerName, nil), true},
		{"every endpoint a Pod", slice("operator.example", pod, pod), true},
		{"hand-written, no reference", slice("", nil), false},
		{"one endpoint not a Pod", slice("", pod, node), false},
		{"another controller's, no reference", slice("operator.example", nil), false},
		{"empty", slice(""), false},
	}
	for _, tc := range cases {
		if got := Trusted(tc.s); got != tc.want {
			t.Errorf("%s: Trusted = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSafeDropsAPIServerAndForbidden(t *testing.T) {
	api := map[netip.Addr]bool{netip.MustParseAddr("10.96.0.1"): true, netip.MustParseAddr("198.18.0.2"): true}
	got := safe([]string{"198.18.1.10:8080", "10.96.0.1:443", "198.18.0.2:6443", "127.0.0.1:8080", "[fd00::5]:80", "[fe80::1]:80", "junk"}, api)
	want := []string{"198.18.1.10:8080", "[fd00::5]:80"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("safe = %v, want %v", got, want)
	}
}
