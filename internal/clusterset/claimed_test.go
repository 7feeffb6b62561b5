package clusterset

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"ferry.dev/ferry/internal/claims"
	"ferry.dev/ferry/internal/contract"
)

// Which mirrors the clusterset reconciler believes: the claimed ones, and
// during an upgrade those of existing Links that hold no claim yet; never a
// mirror of a Link that holds claims but not for it, nor one that names no
// Link.
func TestClaimedMirrors(t *testing.T) {
	m := func(ns, name, link string, egress int32) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
				Labels: map[string]string{contract.LabelLink: link, contract.LabelSourceCluster: link}},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(egress)}}},
		}
	}
	real := m("shop", "web-east", "east", 41000)
	copied := m("tenant", "web-east", "east", 41001)    // east holds claims, none for this
	upgrading := m("shop", "web-north", "north", 41002) // north exists, holds no claim yet
	nobody := m("tenant", "web-ghost", "ghost", 41003)  // no such Link
	table := claims.Table{41000: {Owner: claims.LinkOwner("east"), Namespace: "shop", Service: "web-east", Port: 80}}
	got := claimedMirrors([]*corev1.Service{real, copied, upgrading, nobody}, claims.Snapshot{Table: table}, map[string]bool{"east": true, "north": true})
	if !slices.Equal(got, []*corev1.Service{real, upgrading}) {
		var names []string
		for _, s := range got {
			names = append(names, s.Namespace+"/"+s.Name)
		}
		t.Errorf("believed %v, want shop/web-east and shop/web-north", names)
	}
}

// A headless mirror holds no port: a claimed host mirror of the same Link
// and service vouches for it, and nothing vouches for a headless copy.
func TestClaimedMirrorsHeadless(t *testing.T) {
	svc := func(ns, name, remote, host string, headless bool, egress int32) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
				Labels:      map[string]string{contract.LabelLink: "east", contract.LabelSourceCluster: "east"},
				Annotations: map[string]string{contract.AnnotationRemoteService: remote}},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(egress)}}},
		}
		if host != "" {
			s.Annotations[contract.AnnotationRemoteHostname] = host
		}
		if headless {
			s.Spec.ClusterIP = corev1.ClusterIPNone
		}
		return s
	}
	mirror := svc("db", "web-east", "web", "", true, 80)
	host := svc("db", "web-east-web-0", "web", "web-0", false, 41000)
	lone := svc("tenant", "web-east", "web", "", true, 80)
	table := claims.Table{41000: {Owner: claims.LinkOwner("east"), Namespace: "db", Service: "web-east-web-0", Port: 80}}
	got := claimedMirrors([]*corev1.Service{mirror, host, lone}, claims.Snapshot{Table: table}, map[string]bool{"east": true})
	if !slices.Equal(got, []*corev1.Service{host, mirror}) {
		var names []string
		for _, s := range got {
			names = append(names, s.Namespace+"/"+s.Name)
		}
		t.Errorf("believed %v, want db/web-east-web-0 and db/web-east", names)
	}
}
