package gatewayd

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	ferryv1 "ferry.dev/ferry/api/v1alpha1"
	"ferry.dev/ferry/internal/gateway"
	"ferry.dev/ferry/internal/identity"
	"ferry.dev/ferry/internal/mirror"
	"ferry.dev/ferry/internal/names"
	"ferry.dev/ferry/internal/tunnel"
)

const mesh = "ferry.local"

func link(name, cluster, id string, addrs ...string) *ferryv1.Link {
	return &ferryv1.Link{
		ObjectMeta: metav1.ObjectMeta{Namespace: names.SystemNamespace, Name: name},
		Spec:       ferryv1.LinkSpec{ClusterName: cluster, GatewayIdentity: id, GatewayAddresses: addrs},
	}
}

func mirrorSvc(ns, name, linkName, cluster, remote string, ports ...corev1.ServicePort) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels:      map[string]string{names.LabelLink: linkName, names.LabelSourceCluster: cluster},
			Annotations: map[string]string{names.AnnotationRemoteService: remote}},
		Spec: corev1.ServiceSpec{Ports: ports},
	}
	return s
}

// aged makes a Service created `ago` before a fixed instant.
func aged(s *corev1.Service, ago time.Duration) *corev1.Service {
	s.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).Add(-ago))
	return s
}

func port(p, target int32) corev1.ServicePort {
	return corev1.ServicePort{Port: p, TargetPort: intstr.FromInt32(target), Protocol: corev1.ProtocolTCP}
}

func TestRemotes(t *testing.T) {
	eastGW := identity.GatewayID(mesh, "east").String()
	cases := []struct {
		name     string
		links    []*ferryv1.Link
		want     map[string]tunnel.Remote
		problems []string
	}{
		{
			name:  "one link",
			links: []*ferryv1.Link{link("east", "east", eastGW, "198.19.0.12:4143", "198.19.0.13:4143")},
			want: map[string]tunnel.Remote{"east": {
				Addresses: []string{"198.19.0.12:4143", "198.19.0.13:4143"},
				Identity:  identity.GatewayID(mesh, "east"),
			}},
		},
		{
			name:     "identity of another cluster refused",
			links:    []*ferryv1.Link{link("east", "east", identity.GatewayID(mesh, "north").String(), "198.19.0.12:4143")},
			want:     map[string]tunnel.Remote{},
			problems: []string{"is not cluster east's gateway"},
		},
		{
			name:     "controller identity refused as a gateway",
			links:    []*ferryv1.Link{link("east", "east", identity.ControllerID(mesh, "east").String(), "198.19.0.12:4143")},
			want:     map[string]tunnel.Remote{},
			problems: []string{"is not cluster east's gateway"},
		},
		{
			name:     "identity from another mesh refused",
			links:    []*ferryv1.Link{link("east", "east", "spiffe://east.other.mesh/ns/ferry-system/sa/ferry-gateway", "198.19.0.12:4143")},
			want:     map[string]tunnel.Remote{},
			problems: []string{"gateway identity"},
		},
		{
			name:     "two links for one cluster: first by name wins",
			links:    []*ferryv1.Link{link("z-east", "east", eastGW, "198.19.0.99:4143"), link("east", "east", eastGW, "198.19.0.12:4143")},
			want:     map[string]tunnel.Remote{"east": {Addresses: []string{"198.19.0.12:4143"}, Identity: identity.GatewayID(mesh, "east")}},
			problems: []string{"another Link already names cluster east"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := Remotes(mesh, tc.links)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("remotes = %+v, want %+v", got, tc.want)
			}
			checkProblems(t, problems, tc.problems)
		})
	}
}

func TestRoutes(t *testing.T) {
	links := []*ferryv1.Link{link("east", "east", "", ""), link("north", "north", "", "")}
	dest := func(cluster, ns, svc string, p int) []gateway.Destination {
		return []gateway.Destination{{Cluster: cluster, Target: tunnel.Target{Namespace: ns, Service: svc, Port: p}}}
	}
	long := strings.Repeat("l", 60)
	cases := []struct {
		name     string
		mirrors  []*corev1.Service
		want     []gateway.Route
		problems []string
	}{
		{
			name:    "each port listens on its targetPort",
			mirrors: []*corev1.Service{mirrorSvc("app", "foo-east", "east", "east", "foo", port(80, 41000), port(443, 41001))},
			want:    []gateway.Route{{Port: 41000, Destinations: dest("east", "app", "foo", 80)}, {Port: 41001, Destinations: dest("east", "app", "foo", 443)}},
		},
		{
			name:    "a truncated mirror name routes to the remote name from the annotation",
			mirrors: []*corev1.Service{mirrorSvc("app", names.MirrorName(long, "east"), "east", "east", long, port(80, 41000))},
			want:    []gateway.Route{{Port: 41000, Destinations: dest("east", "app", long, 80)}},
		},
		{
			name:    "services without Ferry's labels are ignored silently",
			mirrors: []*corev1.Service{{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "plain"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{port(80, 8080)}}}},
		},
		{
			name:     "link missing or naming another cluster",
			mirrors:  []*corev1.Service{mirrorSvc("app", "foo-west", "west", "west", "foo", port(80, 41000)), mirrorSvc("app", "foo-x", "east", "north", "foo", port(80, 41001))},
			problems: []string{"link west does not exist", "link east does not exist or is not for cluster north"},
		},
		{
			name:     "no remote-service annotation",
			mirrors:  []*corev1.Service{mirrorSvc("app", "foo-east", "east", "east", "", port(80, 41000))},
			problems: []string{"no ferry.dev/remote-service"},
		},
		{
			name: "egress port used twice, same age: first by namespace/name keeps it",
			mirrors: []*corev1.Service{
				mirrorSvc("b", "bar-north", "north", "north", "bar", port(80, 41000)),
				mirrorSvc("a", "foo-east", "east", "east", "foo", port(80, 41000)),
			},
			want:     []gateway.Route{{Port: 41000, Destinations: dest("east", "a", "foo", 80)}},
			problems: []string{"egress port 41000 already used by the older a/foo-east"},
		},
		{
			// A tenant forges a "mirror" on prod's port, in a namespace
			// that sorts first: the real, older mirror keeps the port.
			name: "a forged younger mirror cannot take an existing mirror's port",
			mirrors: []*corev1.Service{
				aged(mirrorSvc("aaa", "x", "east", "east", "evil", port(5432, 41000)), 0),
				aged(mirrorSvc("prod", "db-east", "east", "east", "db", port(5432, 41000)), 2*time.Hour),
			},
			want:     []gateway.Route{{Port: 41000, Destinations: dest("east", "prod", "db", 5432)}},
			problems: []string{"egress port 41000 already used by the older prod/db-east"},
		},
		{
			name:     "ports outside the egress range are never opened",
			mirrors:  []*corev1.Service{mirrorSvc("app", "foo-east", "east", "east", "foo", port(80, 4143), port(81, 22))},
			problems: []string{`port 80: targetPort "4143" is not an egress port in 41000-48999`, `port 81: targetPort "22"`},
		},
		{
			name:     "an invalid remote service name is refused, not sent",
			mirrors:  []*corev1.Service{mirrorSvc("app", "foo-east", "east", "east", "Bad_Name", port(80, 41000))},
			problems: []string{"mirror app/foo-east port 80"},
		},
		{
			name: "named or out-of-range targetPort and UDP refused",
			mirrors: []*corev1.Service{mirrorSvc("app", "foo-east", "east", "east", "foo",
				corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("http")},
				port(81, 70000),
				corev1.ServicePort{Port: 53, TargetPort: intstr.FromInt32(41005), Protocol: corev1.ProtocolUDP},
			)},
			problems: []string{`port 80: targetPort "http"`, `port 81: targetPort "70000"`, `port 53: targetPort "41005"`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := Routes(tc.mirrors, links, mirror.DefaultRange())
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("routes = %+v, want %+v", got, tc.want)
			}
			checkProblems(t, problems, tc.problems)
		})
	}
}

func checkProblems(t *testing.T, got []error, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("problems = %v, want %d matching %q", got, len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(got[i].Error(), w) {
			t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
		}
	}
}
